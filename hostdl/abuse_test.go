package hostdl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/fakeclock"
	"github.com/viacodec/viacodec/internal/syncbuf"
)

// The tests in this file each replay an attack a hostile token holder or
// a plain hostile client made on loopback, and check the documented answer
// and that a legitimate receiver still completes in its normal time.

// clockedServer serves a table on clock; the test sweeps it.
func clockedServer(t *testing.T, clock *fakeclock.Clock) (*core.Table, *Server) {
	t.Helper()
	table, err := core.NewTable(core.TableOptions{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(table.Close)
	return table, startServer(t, table, ServerOptions{SweepInterval: -1, Clock: clock.Now})
}

// keepAlive is an HTTP client with its own connections, closed at the end
// of the test.
func keepAlive(t *testing.T) *http.Client {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// TestRefusedRequestsLeaveNoTrace (rejected receipts change state):
// receipts with a wrong nonce and requests for items or ranges that do not
// exist, under invented receiver ids, record no receiver and are no
// activity: the transaction times out on time and its outcome lists the
// real receiver alone.
func TestRefusedRequestsLeaveNoTrace(t *testing.T) {
	clock := fakeclock.New(fakeclock.Start)
	table, srv := clockedServer(t, clock)
	mdl := newModel(2<<20, 1, 32)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Timeout: time.Minute})
	baseline := timedDecode(t, newTestClient(t, ClientOptions{Receiver: "agent"}), msg, mdl)
	clock.Advance(59 * time.Second)
	ref := tx.Ref()
	hc := keepAlive(t)
	for i := range 50 {
		hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: fmt.Sprint("ghost-", i),
			headerNonce: strings.Repeat("ab", 24), "Range": "bytes=0-1023"}
		for _, req := range []struct {
			method, path string
			code         int
		}{
			{"POST", "receipt", http.StatusForbidden},
			{"GET", "items/1", http.StatusNotFound},
			{"GET", "items/9999", http.StatusNotFound},
		} {
			if code, body, _ := doWith(t, hc, req.method, batchURL(srv, ref, req.path), hdr); code != req.code {
				t.Fatalf("%s %s: %d %s, want %d", req.method, req.path, code, body, req.code)
			}
		}
		hdr["Range"] = "bytes=4194304-4194400"
		if code, _, _ := doWith(t, hc, "GET", batchURL(srv, ref, "items/0"), hdr); code != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("range past the end: %d", code)
		}
	}
	if n := table.Sweep(clock.Advance(time.Second)); n != 1 {
		t.Fatal("refused requests kept the transaction alive past its timeout")
	}
	out, _ := tx.Outcome()
	if ids := receiverIDs(tx); out.State != core.StateQuorumMet || !slices.Equal(ids, []string{"agent"}) {
		t.Errorf("outcome %v, receivers %v; want quorum met, the agent alone", out.State, ids)
	}
	msg, _ = publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	withinNormal(t, "a receiver after the probes", timedDecode(t, newTestClient(t, ClientOptions{}), msg, mdl), baseline)
}

// TestNonceFlood (nonce eviction): while a receiver downloads, thousands
// of manifest requests under its id do not spoil its receipt: it
// completes and is confirmed.
func TestNonceFlood(t *testing.T) {
	size, flood := 64<<20, 2000
	if raceOrShort() {
		size, flood = 8<<20, 500
	}
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(size, 4, 33)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Receivers: 1})
	baseline := timedDecode(t, newTestClient(t, ClientOptions{Receiver: "agent"}), msg, mdl)

	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Receivers: 1})
	ref := tx.Ref()
	hc := keepAlive(t)
	var once sync.Once
	var flooding time.Duration
	agent := newTestClient(t, ClientOptions{Receiver: "agent", Progress: func(_ uuid.UUID, done, _ int64) {
		if done != 0 {
			return
		}
		// The agent has its manifest and nonce: now the flood, before
		// its first range.
		once.Do(func() {
			start := time.Now()
			for range flood {
				code, _, _ := doWith(t, hc, "GET", batchURL(srv, ref, "manifest"), map[string]string{"Authorization": bearer(ref), headerReceiver: "agent"})
				if code != http.StatusOK {
					t.Errorf("flood manifest: %d", code)
					return
				}
			}
			flooding = time.Since(start)
		})
	}})
	d := timedDecode(t, agent, msg, mdl)
	withinNormal(t, "the agent", d-flooding, baseline)
	out, err := tx.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent"}) {
		t.Errorf("outcome %v, confirmed %v", out.State, out.Confirmed())
	}
}

// TestReceiverFlood (unbounded receivers): a transaction records at most
// MaxReceivers receivers; thousands of invented ids beyond get 403
// KindLimit, take no memory and are no activity, so the transaction still
// times out on time. With named receivers every other id is 403 KindAuth.
func TestReceiverFlood(t *testing.T) {
	flood := 2000
	if raceOrShort() {
		flood = 500
	}
	clock := fakeclock.New(fakeclock.Start)
	table, srv := clockedServer(t, clock)
	mdl := newModel(1<<20, 1, 34)
	hc := keepAlive(t)
	for _, o := range []core.PublishOptions{
		{MaxReceivers: 16, Timeout: time.Minute},
		{Names: []string{"agent", "agent-2"}, Timeout: time.Minute},
	} {
		msg, tx := publish(t, table, srv.Source(), mdl.body(), o)
		ref := tx.Ref()
		baseline := timedDecode(t, newTestClient(t, ClientOptions{Receiver: "agent"}), msg, mdl)
		admitted := 1
		wantKind := "auth"
		if o.Names == nil {
			wantKind = "limit"
			for ; admitted < 16; admitted++ {
				if code, _, _ := doWith(t, hc, "GET", batchURL(srv, ref, "manifest"), map[string]string{"Authorization": bearer(ref), headerReceiver: fmt.Sprint("early-", admitted)}); code != http.StatusOK {
					t.Fatalf("receiver %d under the bound: %d", admitted, code)
				}
			}
		}
		clock.Advance(59 * time.Second)
		for i := range flood {
			code, body, _ := doWith(t, hc, "GET", batchURL(srv, ref, "manifest"), map[string]string{"Authorization": bearer(ref), headerReceiver: fmt.Sprint("flood-", i)})
			if code != http.StatusForbidden || errKind(t, body) != wantKind {
				t.Fatalf("%v: invented receiver %d: %d %s", o.Names, i, code, body)
			}
		}
		if n := len(receiverIDs(tx)); n != admitted {
			t.Errorf("%v: %d receivers recorded, want %d", o.Names, n, admitted)
		}
		_, metrics, _ := doWith(t, hc, "GET", srv.Source()+"/metrics", nil)
		if want := fmt.Sprintf("hostdl_receivers_active %d\n", admitted-1); !strings.Contains(string(metrics), want) {
			t.Errorf("%v: metrics lack %q", o.Names, want)
		}
		table.Sweep(clock.Advance(time.Second))
		if _, done := tx.Outcome(); !done {
			t.Errorf("%v: the flood kept the transaction alive past its timeout", o.Names)
		}
		msg, _ = publish(t, table, srv.Source(), mdl.body(), o)
		withinNormal(t, "a receiver after the flood", timedDecode(t, newTestClient(t, ClientOptions{Receiver: "agent"}), msg, mdl), baseline)
	}
}

// dialFrom opens a TCP connection to addr from the local IP ip.
func dialFrom(t *testing.T, addr, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// idleAfterOneRequest sends GET /metrics on c, reads the answer and
// leaves the connection open and idle.
func idleAfterOneRequest(t *testing.T, c net.Conn) {
	t.Helper()
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// closedByServer reports whether the server closed c (EOF or reset within
// wait).
func closedByServer(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// waitFor polls cond every 5ms for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestIdleConnectionsYield (idle keep-alive slowloris): with every
// connection slot held by clients that sent one request and sat idle, or
// sent nothing, a receiver still gets in at once: at the cap the server
// closes the connections idle longest. A connection busy with a request
// is not closed.
func TestIdleConnectionsYield(t *testing.T) {
	const maxConns = 16
	hold := make(chan struct{})
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				<-hold
			}
			h.ServeHTTP(w, r)
		})
	}
	table := newTable(t)
	srv, err := newServer(table, ServerOptions{Logger: quiet, MaxConns: maxConns}, wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	mdl := newModel(4<<20, 2, 35)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	// A short request timeout, so that a receiver locked out fails fast.
	legit := func() *Client {
		return newTestClient(t, ClientOptions{RequestTimeout: 3 * time.Second, Retries: 2, BackoffMin: 10 * time.Millisecond})
	}
	first := legit()
	baseline := timedDecode(t, first, msg, mdl)
	first.Close()
	waitFor(t, "the first receiver's connections to close", func() bool { return srv.Stats().ConnsOpen == 0 })

	busy := dialFrom(t, srv.Addr().String(), "127.0.0.1")
	fmt.Fprintf(busy, "GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	var attack []net.Conn
	for i := range maxConns - 1 {
		c := dialFrom(t, srv.Addr().String(), "127.0.0.1")
		if i%3 != 0 {
			idleAfterOneRequest(t, c) // idle keep-alive
		} // else: a connection that never sends a byte
		attack = append(attack, c)
	}
	waitFor(t, "the cap", func() bool { return srv.Stats().ConnsOpen == maxConns })

	withinNormal(t, "a receiver at the cap", timedDecode(t, legit(), msg, mdl), baseline)
	closed := 0
	for _, c := range attack {
		if closedByServer(c, 10*time.Millisecond) {
			closed++
		}
	}
	if closed == 0 || srv.Stats().ConnsShed == 0 {
		t.Errorf("%d idle connections closed (%d shed) to let the receiver in", closed, srv.Stats().ConnsShed)
	}
	close(hold)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(busy), nil); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the busy connection did not get its answer: %v", err)
	}
}

// TestPerClientCap: with MaxConnsPerClient, one client address holds at
// most that many connections, the rest are closed at once, and a receiver
// from another address gets in.
func TestPerClientCap(t *testing.T) {
	const perClient = 4
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{MaxConns: 16, MaxConnsPerClient: perClient})
	mdl := newModel(4<<20, 2, 36)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	baseline := timedDecode(t, newTestClient(t, ClientOptions{}), msg, mdl)

	var attack []net.Conn
	for range 20 {
		attack = append(attack, dialFrom(t, srv.Addr().String(), "127.0.0.2"))
	}
	closed := 0
	for _, c := range attack {
		if closedByServer(c, 200*time.Millisecond) {
			closed++
		}
	}
	if closed != 20-perClient {
		t.Errorf("%d of 20 connections from one address closed, want %d", closed, 20-perClient)
	}
	withinNormal(t, "a receiver from another address", timedDecode(t, newTestClient(t, ClientOptions{}), msg, mdl), baseline)
}

// TestSlowReadersShareBudget (slow readers hold the in-flight budget): two
// readers that take whole ranges of a batch slowly hold at most a piece of
// the in-flight budget each, so a receiver of another batch completes in
// its normal time; a reader slower than MinWriteRate is cut off and its
// budget comes back.
func TestSlowReadersShareBudget(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{MaxInFlightBytes: 4 << 20, MaxRange: 4 << 20, MinWriteRate: 16 << 10})
	bait, mdl := newModel(8<<20, 1, 37), newModel(8<<20, 4, 38)
	_, baitTx := publish(t, table, srv.Source(), bait.body(), core.PublishOptions{})
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	legit := func() *Client { return newTestClient(t, ClientOptions{RequestTimeout: 5 * time.Second, Retries: 1}) }
	baseline := timedDecode(t, legit(), msg, mdl)

	ref := baitTx.Ref()
	var got [2]atomic.Int64
	for i := range 2 {
		c := dialFrom(t, srv.Addr().String(), "127.0.0.1")
		c.(*net.TCPConn).SetReadBuffer(8 << 10)
		fmt.Fprintf(c, "GET /v1/batches/%s/items/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nViacodec-Protocol: 2\r\nAuthorization: %s\r\n%s: slow-%d\r\nRange: bytes=%d-%d\r\n\r\n",
			ref.RefID, bearer(ref), headerReceiver, i, i<<22, i<<22+4<<20-1)
		go func() {
			// About 400 KB/s: above MinWriteRate, far below the link.
			buf := make([]byte, 4<<10)
			for {
				n, err := c.Read(buf)
				got[i].Add(int64(n))
				if err != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	waitFor(t, "the slow readers to start", func() bool { return got[0].Load() > 0 && got[1].Load() > 0 })
	withinNormal(t, "a receiver beside two slow readers", timedDecode(t, legit(), msg, mdl), baseline)
	if got[0].Load() >= 4<<20 || got[1].Load() >= 4<<20 {
		t.Fatalf("the slow readers were not slow: %d, %d bytes", got[0].Load(), got[1].Load())
	}

	// Below MinWriteRate (but far above the 35 KB/s that WriteStall
	// alone would catch): the server ends the response, so the
	// transaction, aborted meanwhile, reports its end.
	srv2 := startServer(t, table, ServerOptions{MinWriteRate: 1 << 20})
	_, crawlTx := publish(t, table, srv2.Source(), bait.body(), core.PublishOptions{})
	ref = crawlTx.Ref()
	c := dialFrom(t, srv2.Addr().String(), "127.0.0.1")
	c.(*net.TCPConn).SetReadBuffer(8 << 10)
	fmt.Fprintf(c, "GET /v1/batches/%s/items/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nViacodec-Protocol: 2\r\nAuthorization: %s\r\n%s: crawl\r\nRange: bytes=0-8388607\r\n\r\n",
		ref.RefID, bearer(ref), headerReceiver)
	var crawled atomic.Int64
	go func() {
		buf := make([]byte, 4<<10)
		for {
			n, err := c.Read(buf)
			crawled.Add(int64(n))
			if err != nil {
				return
			}
			time.Sleep(40 * time.Millisecond) // about 100 KB/s
		}
	}()
	waitFor(t, "the crawler to start", func() bool { return crawled.Load() > 0 })
	start := time.Now()
	crawlTx.Abort()
	select {
	case <-crawlTx.Done():
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the server took %v to end a response at a tenth of MinWriteRate", d)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("a response at a tenth of MinWriteRate was not ended (%d bytes read)", crawled.Load())
	}
	waitFor(t, "the budget to come back", func() bool { return srv2.Stats().InFlightBytes == 0 })
}

// TestAttackerTextCut (attacker text is echoed): error bodies stay within
// 512 bytes whatever the request held, and the logs hold no long run of
// what the client sent.
func TestAttackerTextCut(t *testing.T) {
	var sink syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{Logger: log})
	mdl := newModel(2<<20, 1, 39)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	baseline := timedDecode(t, newTestClient(t, ClientOptions{}), msg, mdl)
	ref := tx.Ref()

	var ranges strings.Builder
	ranges.WriteString("bytes=0-1")
	for i := 1; i < 10000; i++ {
		fmt.Fprintf(&ranges, ",%d-%d", 2*i, 2*i+1)
	}
	long := strings.Repeat("Z", 6000)
	auth := map[string]string{"Authorization": bearer(ref), headerReceiver: "r"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range auth {
			h[a] = b
		}
		h[k] = v
		return h
	}
	for _, req := range []struct {
		method, path string
		hdr          map[string]string
	}{
		{"GET", batchURL(srv, ref, "items/0"), with("Range", ranges.String())},
		{"GET", batchURL(srv, ref, "items/0"), with("Range", "bytes="+long)},
		{"GET", batchURL(srv, ref, "items/"+long), with("Range", "bytes=0-1")},
		{"GET", srv.Source() + "/v1/batches/" + long + "/manifest", auth},
		{"GET", srv.Source() + "/" + long, auth},
		{"GET", batchURL(srv, ref, "manifest"), with(headerReceiver, long)},
		{"POST", batchURL(srv, ref, "receipt"), with(headerNonce, long)},
		{"GET", batchURL(srv, ref, "manifest"), with("Authorization", "Bearer "+long)},
	} {
		code, body, _ := rawDo(t, req.method, req.path, req.hdr)
		if code < 400 || len(body) > 512 {
			t.Errorf("%s %.60s: status %d, error body of %d bytes", req.method, req.path, code, len(body))
		}
	}
	withinNormal(t, "a receiver after the probes", timedDecode(t, newTestClient(t, ClientOptions{}), msg, mdl), baseline)
	logs := sink.String()
	for _, line := range strings.Split(logs, "\n") {
		if len(line) > 1024 {
			t.Errorf("a log line of %d bytes: %.120s…", len(line), line)
		}
	}
	if regexp.MustCompile(`Z{300}|(,\d+-\d+){100}`).MatchString(logs) {
		t.Error("the logs hold a long run of attacker text")
	}
}
