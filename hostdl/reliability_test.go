package hostdl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// cutProxy forwards TCP connections to target and, once, cuts the first
// connection whose server-to-client stream passes cutAfter bytes: it
// forwards exactly cutAfter bytes and closes both sides (with a FIN, or an
// RST when reset is set).
type cutProxy struct {
	ln       net.Listener
	target   string
	cutAfter int64
	reset    bool
	cuts     atomic.Int32
	wg       sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, cutAfter int64, reset bool) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cutAfter: cutAfter, reset: reset}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.pipe(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) pipe(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := s.Read(buf)
		if n+int64(k) > p.cutAfter && p.cuts.CompareAndSwap(0, 1) {
			c.Write(buf[:p.cutAfter-n])
			if p.reset {
				time.Sleep(50 * time.Millisecond) // let the client read what came
				c.(*net.TCPConn).SetLinger(0)
			}
			return
		}
		if k > 0 {
			if _, werr := c.Write(buf[:k]); werr != nil {
				return
			}
			n += int64(k)
		}
		if err != nil {
			c.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// TestResumeAfterReset: a connection cut in the middle of a chunk is
// resumed from the last good piece (the source serves the chunk's rest,
// not the whole chunk again) and the result is bit-exact.
func TestResumeAfterReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto Protocol
		reset bool
	}{{"http1-fin", HTTP1, false}, {"http1-rst", HTTP1, true}, {"http2-fin", HTTP2, false}} {
		t.Run(tc.name, func(t *testing.T) {
			const chunk = 4 << 20
			table := newTable(t)
			srv := startServer(t, table, ServerOptions{})
			proxy := newCutProxy(t, srv.Addr().String(), 6<<20+12345, tc.reset)
			mdl := newModel(16<<20, 2, 8)
			msg, _ := publish(t, table, proxy.url(), mdl.body(), core.PublishOptions{})
			c := newTestClient(t, ClientOptions{Protocol: tc.proto, ChunkSize: chunk, Concurrency: 2, BackoffMin: time.Millisecond})
			v, err := decoder(t, c).Decode(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := mdl.check(v); err != nil {
				t.Fatal(err)
			}
			if proxy.cuts.Load() != 1 {
				t.Fatal("the proxy never cut a connection")
			}
			// Every chunk cut short was asked again only for its rest:
			// the source served less than one extra chunk per stream
			// the cut broke (Concurrency 2).
			served := table.Stats().BytesServed
			extra := served - int64(len(mdl.raw))
			if extra <= 0 || extra >= 2*chunk {
				t.Errorf("served %d bytes for %d: %d extra, want 0 < extra < %d", served, len(mdl.raw), extra, 2*chunk)
			}
			if !tc.reset && tc.proto == HTTP1 && extra >= chunk {
				t.Errorf("the cut chunk was fetched again whole: %d extra bytes", extra)
			}
		})
	}
}

// breakWriter serves a broken response: it flips one byte (corrupt), or
// stops after a few bytes and stalls until the request ends (stall).
type breakWriter struct {
	http.ResponseWriter
	corrupt bool
	stall   bool
	done    bool
	ctx     context.Context
}

func (w *breakWriter) Write(p []byte) (int, error) {
	if w.done || len(p) < 4096 {
		return w.ResponseWriter.Write(p)
	}
	w.done = true
	switch {
	case w.corrupt:
		q := bytes.Clone(p) // never write into the source's view
		q[len(q)/3] ^= 0x40
		return w.ResponseWriter.Write(q)
	case w.stall:
		n, err := w.ResponseWriter.Write(p[:1000])
		http.NewResponseController(w.ResponseWriter).Flush()
		<-w.ctx.Done()
		if err == nil {
			err = errors.New("stalled")
		}
		return n, err
	}
	return w.ResponseWriter.Write(p)
}

func (w *breakWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// breaking returns a server wrapper that breaks item responses number
// first, first+1, ... first+count-1 (count -1: all from first on).
func breaking(first, count int64, corrupt, stall bool) (func(http.Handler) http.Handler, *atomic.Int64) {
	var n, broken atomic.Int64
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/items/") {
				if i := n.Add(1); i >= first && (count < 0 || i < first+count) {
					broken.Add(1)
					w = &breakWriter{ResponseWriter: w, corrupt: corrupt, stall: stall, ctx: r.Context()}
				}
			}
			h.ServeHTTP(w, r)
		})
	}, &broken
}

func brokenServer(t *testing.T, wrap func(http.Handler) http.Handler) (*core.Table, *Server) {
	t.Helper()
	table := newTable(t)
	srv, err := newServer(table, ServerOptions{Logger: quiet}, wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return table, srv
}

// TestCorruptOnce: a chunk corrupted once fails its checksum, is fetched
// again from the bad block, and the result is bit-exact.
func TestCorruptOnce(t *testing.T) {
	wrap, broken := breaking(2, 1, true, false)
	table, srv := brokenServer(t, wrap)
	mdl := newModel(8<<20, 2, 9)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	c := newTestClient(t, ClientOptions{ChunkSize: 2 << 20, BackoffMin: time.Millisecond})
	v, err := decoder(t, c).Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
	if broken.Load() != 1 {
		t.Fatalf("%d responses corrupted, want 1", broken.Load())
	}
	// The bad block (1 MiB) and what follows it in its chunk came again.
	if extra := table.Stats().BytesServed - int64(len(mdl.raw)); extra <= 0 || extra > 2<<20 {
		t.Errorf("%d bytes served again, want 1..2 MiB", extra)
	}
}

// TestCorruptAlways: a source that corrupts every response fails the
// download with KindChecksum once the retries are spent, and decode
// returns no value.
func TestCorruptAlways(t *testing.T) {
	wrap, broken := breaking(1, -1, true, false)
	table, srv := brokenServer(t, wrap)
	mdl := newModel(4<<20, 1, 10)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	c := newTestClient(t, ClientOptions{ChunkSize: 1 << 20, Retries: 3, BackoffMin: time.Millisecond})
	v, err := decoder(t, c).Decode(msg)
	wantKind(t, err, core.KindChecksum)
	if v != nil {
		t.Errorf("decode returned %T with its error", v)
	}
	if broken.Load() < 4 {
		t.Errorf("only %d corrupt responses before giving up", broken.Load())
	}
}

// TestStalledBody: a body that stops arriving fails the request after
// RequestTimeout; with retries the download resumes and completes, without
// them it fails with KindTimeout.
func TestStalledBody(t *testing.T) {
	mdl := newModel(2<<20, 1, 11)
	for _, retries := range []int{-1, 2} {
		wrap, _ := breaking(1, 1, false, true)
		table, srv := brokenServer(t, wrap)
		msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
		c := newTestClient(t, ClientOptions{RequestTimeout: 200 * time.Millisecond, Retries: retries, BackoffMin: time.Millisecond})
		start := time.Now()
		v, err := decoder(t, c).Decode(msg)
		took := time.Since(start)
		if retries < 0 {
			wantKind(t, err, core.KindTimeout)
			if v != nil {
				t.Error("a value with the error")
			}
		} else if err != nil {
			t.Fatal(err)
		} else if err := mdl.check(v); err != nil {
			t.Fatal(err)
		}
		if took > 3*time.Second {
			t.Errorf("retries %d: took %v with a 200ms request timeout", retries, took)
		}
	}
}

// TestStalledHeaders: a server that accepts and never answers fails the
// request after RequestTimeout (KindTimeout), not never.
func TestStalledHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	c := newTestClient(t, ClientOptions{RequestTimeout: 100 * time.Millisecond, Retries: 1, BackoffMin: time.Millisecond})
	ref := core.BatchRef{Source: "http://" + ln.Addr().String(), RefID: uuid.New(), Items: 1, Bytes: 4}
	start := time.Now()
	err = c.Fetch(context.Background(), ref, nil)
	wantKind(t, err, core.KindTimeout)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestUnreachable: a source nobody listens on is KindUnavailable once the
// retries are spent, quickly; a Source that is not a URL, or that the
// resolver rejects, is KindUnavailable at once.
func TestUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := newTestClient(t, ClientOptions{Retries: 2, BackoffMin: time.Millisecond})
	for _, src := range []string{"http://" + addr, "not a url", "ftp://x/", "http://"} {
		ref := core.BatchRef{Source: src, RefID: uuid.New()}
		start := time.Now()
		wantKind(t, c.Fetch(context.Background(), ref, nil), core.KindUnavailable)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%q: took %v", src, d)
		}
	}
	r := newTestClient(t, ClientOptions{Resolve: func(string) (string, error) { return "", errors.New("no such node") }})
	wantKind(t, r.Fetch(context.Background(), core.BatchRef{Source: "node-a"}, nil), core.KindUnavailable)
}

// TestResolve: a resolver maps a logical source name to the base URL.
func TestResolve(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(1<<20, 1, 12)
	msg, _ := publish(t, table, "node-a", mdl.body(), core.PublishOptions{})
	c := newTestClient(t, ClientOptions{Resolve: func(s string) (string, error) {
		if s != "node-a" {
			return "", errors.New("unknown")
		}
		return srv.Source(), nil
	}})
	v, err := decoder(t, c).Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
}

// TestCancel: cancelling the context mid-download is KindAborted, a
// deadline KindTimeout; decode returns no value and no goroutine is left.
func TestCancel(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(8<<20, 2, 13)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	g0 := numGoroutine()
	for _, deadline := range []bool{false, true} {
		c, _ := NewClient(ClientOptions{Logger: quiet, ChunkSize: 1 << 20})
		slowDown(c, 32<<10, 5*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		if deadline {
			ctx, cancel = context.WithTimeout(context.Background(), 150*time.Millisecond)
		}
		c.opts.Progress = func(_ uuid.UUID, done, _ int64) {
			if done > 0 && !deadline {
				cancel()
			}
		}
		dm, _ := core.DecOptions{Fetcher: c}.DecMode()
		start := time.Now()
		v, err := dm.DecodeContext(ctx, msg)
		cancel()
		want := core.KindAborted
		if deadline {
			want = core.KindTimeout
		}
		wantKind(t, err, want)
		if v != nil {
			t.Error("a value with the error")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v to stop", d)
		}
		c.Close()
	}
	settleGoroutines(t, g0)
}

// TestMismatch: a ref node that disagrees with the source's manifest is
// KindMismatch; an item the manifest lacks is KindUnknownRef.
func TestMismatch(t *testing.T) {
	srv, _, ref, _ := oneBatch(t, 1<<20, ServerOptions{})
	_ = srv
	c := newTestClient(t, ClientOptions{})
	err := c.Fetch(context.Background(), ref, []core.FetchItem{{ID: 0, DType: core.DTypeUint8, Shape: []int{1 << 20}, Dst: make([]byte, 1<<20)}})
	wantKind(t, err, core.KindMismatch)
	err = c.Fetch(context.Background(), ref, []core.FetchItem{{ID: 5, DType: core.DTypeFloat32, Shape: []int{4}, Dst: make([]byte, 16)}})
	wantKind(t, err, core.KindUnknownRef)
}

// TestSourceKilled runs the source as a child process and kills it
// (SIGKILL) in the middle of the download: the receiver fails within the
// request timeout with KindUnavailable, decode returns no value, and no
// goroutine is left behind.
func TestSourceKilled(t *testing.T) {
	size := 64 << 20
	if raceOrShort() {
		size = 32 << 20
	}
	src := startChild(t, "source", "HOSTDL_SIZE="+itoa(size), "HOSTDL_TENSORS=8")
	msg := src.message(t)
	const timeout = 5 * time.Second
	c, err := NewClient(ClientOptions{Logger: quiet, ChunkSize: 1 << 20, RequestTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	slowDown(c, 64<<10, 2*time.Millisecond) // about 30 MB/s: a second or more
	var killedAt atomic.Pointer[time.Time]
	c.opts.Progress = func(_ uuid.UUID, done, total int64) {
		if done >= 4<<20 && killedAt.Load() == nil {
			now := time.Now()
			killedAt.Store(&now)
			src.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	dm, _ := core.DecOptions{Fetcher: c}.DecMode()
	g0 := numGoroutine()
	v, err := dm.Decode(msg)
	end := time.Now()
	wantKind(t, err, core.KindUnavailable)
	if v != nil {
		t.Errorf("decode returned %T with its error", v)
	}
	at := killedAt.Load()
	if at == nil {
		t.Fatal("the download ended before the kill")
	}
	if d := end.Sub(*at); d > timeout {
		t.Errorf("failed %v after the kill, more than the request timeout %v", d, timeout)
	}
	t.Logf("failed %v after the kill: %v", end.Sub(*at), err)
	c.Close()
	settleGoroutines(t, g0)
}
