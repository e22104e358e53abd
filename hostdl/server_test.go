package hostdl

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// rawDo sends one request to the server with the given headers, and
// Viacodec-Protocol 2 unless hdr gives another (empty: none), and returns
// the status, the body and the response headers. It follows no redirect.
func rawDo(t *testing.T, method, url string, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	return doWith(t, http.DefaultClient, method, url, hdr)
}

// doWith is rawDo through hc.
func doWith(t *testing.T, hc *http.Client, method, url string, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(headerProtocol, protocolVersion)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if req.Header.Get(headerProtocol) == "" {
		req.Header.Del(headerProtocol)
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

// oneBatch serves a one-item batch of size bytes and returns the server,
// the item's bytes, the batch descriptor and its transaction.
func oneBatch(t *testing.T, size int, o ServerOptions) (*Server, []byte, core.BatchRef, *core.Transaction) {
	t.Helper()
	table := newTable(t)
	srv := startServer(t, table, o)
	mdl := newModel(size, 1, 7)
	em, _ := core.EncOptions{ByRef: true, Source: srv.Source(), RefThreshold: 1}.EncMode()
	msg, err := em.Encode(mdl.body())
	if err != nil {
		t.Fatal(err)
	}
	tx, err := table.Publish(msg.Batch(), core.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, mdl.raw, msg.Batch().Ref, tx
}

func batchURL(srv *Server, ref core.BatchRef, path string) string {
	return srv.Source() + "/v1/batches/" + ref.RefID.String() + "/" + path
}

func bearer(ref core.BatchRef) string { return "Bearer " + hex.EncodeToString(ref.Token[:]) }

// unframe returns the item bytes of a range's body (§5.2 of
// docs/download-protocol.md): pieces of writePiece bytes (the last may be
// shorter), each followed by its CRC-32C, which it checks.
func unframe(t testing.TB, body []byte) []byte {
	t.Helper()
	var data []byte
	for len(body) > 0 {
		n := min(writePiece, len(body)-crcSize)
		if n <= 0 {
			t.Fatalf("a piece of %d bytes has no room for its checksum", len(body))
		}
		piece, sum := body[:n], binary.BigEndian.Uint32(body[n:])
		if core.Checksum(piece) != sum {
			t.Fatalf("piece at byte %d: crc32c %08x, sent %08x", len(data), core.Checksum(piece), sum)
		}
		data = append(data, piece...)
		body = body[n+crcSize:]
	}
	return data
}

func errKind(t *testing.T, body []byte) string {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return eb.Kind
}

// TestTokenRequired: a missing or malformed token is 401, a wrong one 403;
// the body is a small JSON error and never holds item bytes.
func TestTokenRequired(t *testing.T) {
	srv, item, ref, _ := oneBatch(t, 1<<20, ServerOptions{})
	wrong := ref
	wrong.Token[0] ^= 1
	cases := []struct {
		name string
		auth string
		want int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"not bearer", "Basic " + hex.EncodeToString(ref.Token[:]), http.StatusUnauthorized},
		{"short", "Bearer abcd", http.StatusUnauthorized},
		{"not hex", "Bearer " + strings.Repeat("zz", 32), http.StatusUnauthorized},
		{"wrong", bearer(wrong), http.StatusForbidden},
	}
	for _, tc := range cases {
		for _, path := range []string{"manifest", "items/0", "receipt"} {
			method := http.MethodGet
			if path == "receipt" {
				method = http.MethodPost
			}
			hdr := map[string]string{"Range": "bytes=0-65535", headerReceiver: "r1", headerNonce: "00"}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			code, body, h := rawDo(t, method, batchURL(srv, ref, path), hdr)
			if code != tc.want {
				t.Errorf("%s %s: status %d, want %d", tc.name, path, code, tc.want)
			}
			if k := errKind(t, body); k != "auth" {
				t.Errorf("%s %s: kind %q", tc.name, path, k)
			}
			if len(body) > 512 || bytes.Contains(body, item[:16]) || bytes.Contains(body, item[1<<19:1<<19+16]) {
				t.Errorf("%s %s: body of %d bytes holds item bytes", tc.name, path, len(body))
			}
			if code == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: no WWW-Authenticate", tc.name, path)
			}
		}
	}
	// Through the client: KindAuth, not retried.
	c := newTestClient(t, ClientOptions{})
	err := c.Fetch(context.Background(), wrong, nil)
	wantKind(t, err, core.KindAuth)
}

// TestRanges: the one range form served, and 416 / 400 / 404 / 405 for
// the others, each with the core kind in the body.
func TestRanges(t *testing.T) {
	const size = 3<<20 + 8
	srv, item, ref, _ := oneBatch(t, size, ServerOptions{MaxRange: 2 << 20})
	get := func(method, path, rng string) (int, []byte, http.Header) {
		hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: "r1"}
		if rng != "" {
			hdr["Range"] = rng
		}
		return rawDo(t, method, batchURL(srv, ref, path), hdr)
	}
	code, body, h := get("GET", "items/0", "bytes=0-1023")
	if code != http.StatusPartialContent || len(body) != 1024+crcSize || !bytes.Equal(unframe(t, body), item[:1024]) ||
		h.Get("Content-Range") != "bytes 0-1023/*" || h.Get("Content-Type") != contentPieces || h.Get(headerProtocol) != "2" {
		t.Fatalf("good range: status %d, %d bytes, Content-Range %q, Content-Type %q", code, len(body), h.Get("Content-Range"), h.Get("Content-Type"))
	}
	// The item's last piece and its short tail: two pieces, each with its
	// checksum.
	code, body, _ = get("GET", "items/0", "bytes=2097152-3145735")
	if code != http.StatusPartialContent || len(body) != size-2<<20+2*crcSize || !bytes.Equal(unframe(t, body), item[2<<20:]) {
		t.Fatalf("tail range: status %d, %d bytes", code, len(body))
	}
	cases := []struct {
		method, path, rng string
		code              int
		kind              string
	}{
		{"GET", "items/0", "bytes=3145735-3145736", 416, "invalid"}, // one past the end
		{"GET", "items/0", "bytes=100-1123", 416, "invalid"},        // not at a piece
		{"GET", "items/0", "bytes=3145728-3145736", 416, "invalid"}, // at a piece, one past the end
		{"GET", "items/0", "bytes=4000000-4000010", 416, "invalid"}, // beyond
		{"GET", "items/0", "bytes=0-3145727", 416, "limit"},         // over MaxRange
		{"GET", "items/0", "bytes=10-5", 416, "protocol"},           // reversed
		{"GET", "items/0", "bytes=0-", 416, "protocol"},             // open-ended
		{"GET", "items/0", "bytes=0-1,5-9", 416, "protocol"},        // several
		{"GET", "items/0", "bytes=+0-9", 416, "protocol"},           // a sign
		{"GET", "items/0", "", 400, "protocol"},                     // none
		{"GET", "items/1", "bytes=0-9", 404, "unknown ref"},         // no such item
		{"GET", "items/x", "bytes=0-9", 404, "unknown ref"},         // not a number
		{"HEAD", "items/0", "bytes=0-9", 405, ""},                   // HEAD
		{"POST", "items/0", "bytes=0-9", 405, ""},                   // wrong method
		{"GET", "../nope/manifest", "", 404, ""},                    // outside the API
	}
	for _, tc := range cases {
		code, body, _ := get(tc.method, tc.path, tc.rng)
		if code != tc.code {
			t.Errorf("%s %s %q: status %d, want %d (%s)", tc.method, tc.path, tc.rng, code, tc.code, body)
			continue
		}
		if tc.kind != "" && errKind(t, body) != tc.kind {
			t.Errorf("%s %s %q: kind %q, want %q", tc.method, tc.path, tc.rng, errKind(t, body), tc.kind)
		}
	}
	// An unknown ref and a malformed one are 404 "unknown ref".
	other := ref
	other.RefID[0] ^= 1
	code, body, _ = rawDo(t, "GET", batchURL(srv, other, "manifest"), map[string]string{"Authorization": bearer(ref), headerReceiver: "r1"})
	if code != 404 || errKind(t, body) != "unknown ref" {
		t.Errorf("unknown ref: %d %s", code, body)
	}
	// A missing receiver id is 400.
	code, body, _ = rawDo(t, "GET", batchURL(srv, ref, "manifest"), map[string]string{"Authorization": bearer(ref)})
	if code != 400 || errKind(t, body) != "invalid" {
		t.Errorf("no receiver: %d %s", code, body)
	}
}

// TestExpired: a finished transaction's ref answers 410 at once, and the
// client reports KindExpired without retrying; a never-published one is
// KindUnknownRef.
func TestExpired(t *testing.T) {
	srv, _, ref, tx := oneBatch(t, 1<<20, ServerOptions{})
	tx.Abort()
	c := newTestClient(t, ClientOptions{BackoffMin: time.Second})
	start := time.Now()
	err := c.Fetch(context.Background(), ref, nil)
	wantKind(t, err, core.KindExpired)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("expired fetch took %v", d)
	}
	code, _, _ := rawDo(t, "GET", batchURL(srv, ref, "items/0"), map[string]string{"Authorization": bearer(ref), headerReceiver: "r1", "Range": "bytes=0-9"})
	if code != http.StatusGone {
		t.Errorf("status %d, want 410", code)
	}
	unknown := ref
	unknown.RefID[15] ^= 1
	wantKind(t, c.Fetch(context.Background(), unknown, nil), core.KindUnknownRef)
}

// TestSweeper: the server's sweeper ends an idle transaction on its own,
// after which its ref is expired; Close stops the sweeper.
func TestSweeper(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{SweepInterval: 5 * time.Millisecond})
	mdl := newModel(1<<20, 1, 3)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Timeout: 20 * time.Millisecond})
	select {
	case <-tx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the sweeper did not end the idle transaction")
	}
	if out, _ := tx.Outcome(); out.State != core.StateTimedOut {
		t.Errorf("state %v", out.State)
	}
	_, err := decoder(t, newTestClient(t, ClientOptions{})).Decode(msg)
	wantKind(t, err, core.KindExpired)
}

// TestHTTP2Cleartext: an HTTP2 client over http:// really speaks HTTP/2
// with the server (r.ProtoMajor == 2 in the handler), and an HTTP1 client
// HTTP/1.1.
func TestHTTP2Cleartext(t *testing.T) {
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		var majors [3]atomic.Int32
		wrap := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				majors[min(r.ProtoMajor, 2)].Add(1)
				h.ServeHTTP(w, r)
			})
		}
		table := newTable(t)
		srv, err := newServer(table, ServerOptions{Logger: quiet}, wrap)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		mdl := newModel(2<<20, 2, 4)
		msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
		v, err := decoder(t, newTestClient(t, ClientOptions{Protocol: proto})).Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := mdl.check(v); err != nil {
			t.Fatal(err)
		}
		want := 1 + int(proto)
		if majors[want].Load() == 0 || majors[3-want].Load() != 0 {
			t.Errorf("protocol %d: HTTP/1 requests %d, HTTP/2 requests %d", proto, majors[1].Load(), majors[2].Load())
		}
	}
}

// TestMetrics: the metrics endpoint reports bytes, transactions, receivers
// and requests by status, in the Prometheus text format.
func TestMetrics(t *testing.T) {
	srv, item, ref, _ := oneBatch(t, 1<<20, ServerOptions{})
	rawDo(t, "GET", batchURL(srv, ref, "items/0"), map[string]string{"Authorization": bearer(ref), headerReceiver: "r1", "Range": "bytes=0-1023"})
	rawDo(t, "GET", batchURL(srv, ref, "items/0"), map[string]string{headerReceiver: "r1", "Range": "bytes=0-1023"})
	code, body, h := rawDo(t, "GET", srv.Source()+"/metrics", nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", code, h.Get("Content-Type"))
	}
	for _, want := range []string{
		"hostdl_bytes_served_total 1024\n",
		"hostdl_transactions_open 1\n",
		"hostdl_receivers_active 1\n",
		`hostdl_requests_total{code="206"} 1` + "\n",
		`hostdl_requests_total{code="401"} 1` + "\n",
		"# TYPE hostdl_connections_open gauge\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if bytes.Contains(body, []byte(hex.EncodeToString(ref.Token[:]))) || bytes.Contains(body, item[:16]) {
		t.Error("metrics hold the token or item bytes")
	}
	srv2 := startServer(t, newTable(t), ServerOptions{DisableMetrics: true})
	if code, _, _ := rawDo(t, "GET", srv2.Source()+"/metrics", nil); code != 404 {
		t.Errorf("disabled metrics: status %d", code)
	}
}

// TestMaxConns: with MaxConns 2 and two connections busy with requests, a
// third connection waits until one of them is done, and is then served;
// the busy ones are not cut.
func TestMaxConns(t *testing.T) {
	hold := make(chan struct{})
	var held atomic.Int32
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				held.Add(1)
				<-hold
			}
			h.ServeHTTP(w, r)
		})
	}
	srv, err := newServer(newTable(t), ServerOptions{Logger: quiet, MaxConns: 2}, wrap)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	busy := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := (&http.Client{Transport: &http.Transport{}}).Get(srv.Source() + "/hold")
			if err != nil {
				busy <- 0
				return
			}
			resp.Body.Close()
			busy <- resp.StatusCode
		}()
	}
	waitFor(t, "two busy connections", func() bool { return held.Load() == 2 })
	hc := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{}}
	if _, err := hc.Get(srv.Source() + "/metrics"); err == nil {
		t.Fatal("a third connection was served while two were busy")
	}
	if n := srv.Stats().ConnsOpen; n != 2 {
		t.Errorf("ConnsOpen %d, want 2", n)
	}
	close(hold)
	for range 2 {
		if code := <-busy; code != http.StatusNotFound {
			t.Errorf("a busy connection's request ended with %d, want its answer (404)", code)
		}
	}
	hc.Timeout = 5 * time.Second
	resp, err := hc.Get(srv.Source() + "/metrics")
	if err != nil {
		t.Fatalf("after the busy ones were done: %v", err)
	}
	resp.Body.Close()
}

// TestShutdown: Shutdown lets a response in progress finish, then refuses
// connections; a Shutdown whose context ends closes what is left and
// returns the context's error; neither leaves a goroutine behind.
func TestShutdown(t *testing.T) {
	g0 := numGoroutine()
	table := newTable(t)
	srv, err := NewServer(table, ServerOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// 32 MiB: more than the socket buffers hold, so the handler is still
	// writing when Shutdown starts.
	mdl := newModel(32<<20, 1, 5)
	_, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	ref := tx.Ref()
	req, _ := http.NewRequest("GET", batchURL(srv, ref, "items/0"), nil)
	req.Header.Set(headerProtocol, protocolVersion)
	req.Header.Set("Authorization", bearer(ref))
	req.Header.Set(headerReceiver, "r1")
	req.Header.Set("Range", "bytes=0-33554431")
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a response was in progress", err)
	default:
	}
	body, err := io.ReadAll(&slowBody{ReadCloser: resp.Body, s: newSlowTransport(256<<10, 5*time.Millisecond), ctx: context.Background()})
	resp.Body.Close()
	if err != nil || !bytes.Equal(unframe(t, body), mdl.raw) {
		t.Fatalf("response during Shutdown: %d bytes, %v", len(body), err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		t.Error("connections accepted after Shutdown")
	}
	tr.CloseIdleConnections()

	// A Shutdown that cannot wait.
	srv2, _ := NewServer(table, ServerOptions{Logger: quiet})
	msg2, _ := publish(t, table, srv2.Source(), mdl.body(), core.PublishOptions{})
	c2, _ := NewClient(ClientOptions{Logger: quiet, ChunkSize: 32 << 20, Concurrency: 1, Retries: -1})
	slowDown(c2, 64<<10, 5*time.Millisecond)
	res2 := make(chan error, 1)
	go func() { _, err := decoder(t, c2).Decode(msg2); res2 <- err }()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv2.Shutdown(ctx); err == nil {
		t.Error("Shutdown with a download in progress and a short context returned nil")
	}
	wantKind(t, <-res2, core.KindUnavailable)
	c2.Close()
	settleGoroutines(t, g0)
}

// TestOptions: out-of-range options are one clear error each.
func TestOptions(t *testing.T) {
	table := newTable(t)
	bad := []ServerOptions{
		{MaxConns: -1},
		{MaxInFlightBytes: 10},
		{MaxInFlightBytes: 8 << 20, MaxRange: 16 << 20},
		{MaxRange: 100},
		{WriteStall: -time.Second},
		{SweepInterval: time.Nanosecond},
		{MetricsPath: "metrics"},
		{MetricsPath: "/v1/batches"},
		{Addr: "256.0.0.1:0"},
		{Advertise: "ftp://10.0.0.1:8470"},
		{TLSFiles: TLSFiles{CertFile: "/nonexistent"}},
		{MaxConns: 8, MaxConnsPerClient: 9},
		{MaxConnsPerClient: -1},
		{MinWriteRate: 10},
		{MinWriteRate: 2 << 30},
		{MetricsPath: "/metrics/"},
		{MetricsPath: "/a//metrics"},
		{Hosts: []string{"host:80"}},
		{Hosts: []string{""}},
	}
	for _, o := range bad {
		o.Logger = quiet
		if s, err := NewServer(table, o); err == nil {
			s.Close()
			t.Errorf("NewServer(%+v) succeeded", o)
		} else if !strings.HasPrefix(err.Error(), "hostdl: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
	if _, err := NewServer(nil, ServerOptions{}); err == nil {
		t.Error("NewServer(nil) succeeded")
	}
	good, err := NewServer(table, ServerOptions{Logger: quiet, MinWriteRate: -1, MaxConnsPerClient: 4, Hosts: []string{"::1", "example.com"}})
	if err != nil {
		t.Fatalf("valid options: %v", err)
	}
	if o := good.opts; o.MinWriteRate != -1 || o.MaxConnsPerClient != 4 || o.MaxConns != DefaultMaxConns {
		t.Errorf("options kept as %+v", o)
	}
	good.Close()
	if s, _ := NewServer(table, ServerOptions{Logger: quiet}); s.opts.MinWriteRate != DefaultMinWriteRate || s.opts.MaxConnsPerClient != 0 {
		t.Errorf("defaults: MinWriteRate %d, MaxConnsPerClient %d", s.opts.MinWriteRate, s.opts.MaxConnsPerClient)
	} else {
		s.Close()
	}
	badc := []ClientOptions{
		{Concurrency: 1000},
		{ChunkSize: 10},
		{RequestTimeout: -1},
		{Retries: 1000},
		{BackoffMin: time.Second, BackoffMax: time.Millisecond},
		{Protocol: 7},
		{Receiver: "has\nnewline"},
		{Receiver: strings.Repeat("r", 300)},
		{TLSFiles: TLSFiles{CertFile: "x"}},
	}
	for _, o := range badc {
		if _, err := NewClient(o); err == nil {
			t.Errorf("NewClient(%+v) succeeded", o)
		} else if !strings.HasPrefix(err.Error(), "hostdl: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
	c, err := NewClient(ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.Concurrency != DefaultConcurrency || c.opts.ChunkSize != DefaultChunkSize || c.opts.Retries != DefaultRetries || c.Receiver() == "" {
		t.Errorf("defaults: %+v", c.opts)
	}
}

// TestWriteStall: a receiver that stops reading holds its range's bytes in
// flight only until a piece has waited WriteStall; then the server drops
// it, the in-flight budget comes back and the view is released (an aborted
// transaction reports its end).
func TestWriteStall(t *testing.T) {
	srv, _, ref, tx := oneBatch(t, 32<<20, ServerOptions{WriteStall: 100 * time.Millisecond})
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(c, "GET /v1/batches/%s/items/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nViacodec-Protocol: 2\r\nAuthorization: %s\r\n%s: stuck\r\nRange: bytes=0-33554431\r\n\r\n",
		ref.RefID, bearer(ref), headerReceiver)
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().InFlightBytes == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if srv.Stats().InFlightBytes == 0 {
		t.Fatal("the range never went in flight")
	}
	tx.Abort()
	for srv.Stats().InFlightBytes != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Stats().InFlightBytes; n != 0 {
		t.Fatalf("%d bytes still in flight for a receiver that stopped reading", n)
	}
	select {
	case <-tx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the view was never released")
	}
}
