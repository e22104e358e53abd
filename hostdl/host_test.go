package hostdl

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/fakeclock"
)

func newTestHost(tb testing.TB, o HostOptions) *Host {
	tb.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	h, err := NewHost(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// send encodes body by reference on h and publishes its batch.
func send(tb testing.TB, h *Host, body any, o core.PublishOptions) ([]byte, *core.Transaction) {
	tb.Helper()
	em, err := h.EncMode(core.EncOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := em.Encode(body)
	if err != nil {
		tb.Fatal(err)
	}
	tx, err := h.Publish(msg.Batch(), o)
	if err != nil {
		tb.Fatal(err)
	}
	return msg.Bytes(), tx
}

func waitTx(tb testing.TB, tx *core.Transaction) core.Outcome {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := tx.Wait(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestHostRound: a source Host publishes a model by reference, a receiver
// Host decodes it bit-exact, the transaction completes with the receiver
// named; Close is idempotent, everything fails clearly after it, and no
// goroutine is left.
func TestHostRound(t *testing.T) {
	g0 := numGoroutine()
	src, err := NewHost(HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewHost(HostOptions{Logger: quiet, Client: ClientOptions{Receiver: "agent-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(src.Source(), "http://127.0.0.1:") || rcv.Receiver() != "agent-1" {
		t.Fatalf("Source %q, Receiver %q", src.Source(), rcv.Receiver())
	}
	if _, err := uuid.Parse(src.Receiver()); err != nil {
		t.Errorf("default receiver id %q is not a UUID: %v", src.Receiver(), err)
	}

	mdl := newModel(4<<20, 4, 31) // four arrays of 1 MiB: each by reference
	em, err := src.EncMode(core.EncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := em.Encode(mdl.body())
	if err != nil {
		t.Fatal(err)
	}
	if b := msg.Batch(); b == nil || len(b.Items) != 4 || b.Ref.Source != src.Source() {
		t.Fatalf("batch %+v, want 4 items from %s", b, src.Source())
	}
	tx, err := src.Publish(msg.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	dm, err := rcv.DecMode(core.DecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dm.Decode(msg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
	out := waitTx(t, tx)
	if out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent-1"}) {
		t.Fatalf("outcome %v confirmed by %v", out.State, out.Confirmed())
	}
	if st := src.Stats(); st.BytesServed != 4<<20 || st.Table.Open != 0 {
		t.Errorf("source stats %+v", st)
	}

	if err := rcv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rcv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := context.Cause(rcv.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("context cause after Close: %v", err)
	}
	_, err = dm.Decode(msg.Bytes())
	wantKind(t, err, core.KindInvalid)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("decode after Close: %v", err)
	}
	src.Close()
	msg2, err := em.Encode(mdl.body())
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Publish(msg2.Batch(), core.PublishOptions{})
	wantKind(t, err, core.KindInvalid)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("publish after Close: %v", err)
	}
	settleGoroutines(t, g0)
}

// TestHostCloseCancelsDownload: closing a receiver Host in the middle of a
// download fails the decode with KindAborted (errors.Is ErrClosed) and
// returns only after it has; closing the source then ends the unfinished
// transaction with StateDeleted and the receiver failed.
func TestHostCloseCancelsDownload(t *testing.T) {
	g0 := numGoroutine()
	src, err := NewHost(HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	d := newClosing()
	rcv, err := NewHost(HostOptions{Logger: quiet, Client: ClientOptions{Receiver: "slow", ChunkSize: 1 << 20, Progress: d.progress}})
	if err != nil {
		t.Fatal(err)
	}
	slowDown(rcv.Client(), 32<<10, 5*time.Millisecond)
	mdl := newModel(8<<20, 2, 32)
	msg, tx := send(t, src, mdl.body(), core.PublishOptions{Receivers: 1})
	dm, _ := rcv.DecMode(core.DecOptions{})
	d.run(dm, msg)
	d.interrupt(t, rcv.Close)
	if _, done := tx.Outcome(); done {
		t.Fatal("the transaction ended without a receipt")
	}
	src.Close()
	out := waitTx(t, tx)
	if out.State != core.StateDeleted || len(out.Receivers) != 1 || out.Receivers[0].State != core.ReceiverFailed {
		t.Errorf("after the source's Close: %v %+v", out.State, out.Receivers)
	}
	settleGoroutines(t, g0)
}

// TestHostClock: the host's one clock is the table's (receivers' times) and
// the sweeps' (a transaction idle for its timeout on that clock ends,
// though almost no real time passed).
func TestHostClock(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	t0 := clock.Now()
	src := newTestHost(t, HostOptions{Clock: clock.Now, Server: ServerOptions{SweepInterval: 5 * time.Millisecond}})
	rcv := newTestHost(t, HostOptions{Client: ClientOptions{Receiver: "r"}})
	mdl := newModel(1<<20, 1, 33)
	msg, tx := send(t, src, mdl.body(), core.PublishOptions{Receivers: 1})
	dm, _ := rcv.DecMode(core.DecOptions{})
	if _, err := dm.Decode(msg); err != nil {
		t.Fatal(err)
	}
	out := waitTx(t, tx)
	if r := out.Receivers[0]; !r.FirstSeen.Equal(t0) || !r.LastSeen.Equal(t0) {
		t.Errorf("receiver seen at %v..%v, want the host's clock %v", r.FirstSeen, r.LastSeen, t0)
	}

	_, idle := send(t, src, mdl.body(), core.PublishOptions{Receivers: 1, Timeout: time.Minute})
	time.Sleep(50 * time.Millisecond) // sweeps run; on the host's clock nothing is idle yet
	if _, done := idle.Outcome(); done {
		t.Fatal("swept before the host's clock moved")
	}
	clock.Advance(2 * time.Minute)
	if out := waitTx(t, idle); out.State != core.StateTimedOut {
		t.Errorf("state %v, want %v", out.State, core.StateTimedOut)
	}
}

// countingReader counts the bytes drawn from a source of randomness and
// serializes its reads.
type countingReader struct {
	mu sync.Mutex
	r  io.Reader
	n  int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingReader) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestHostRand: the host's one source of randomness gives the receiver id
// (16 bytes), the ref id and token of each batch (16 + 32), the receipt key
// of each transaction (32) and the salt of each manifest's nonce (8); two
// hosts seeded alike mint alike, seeded apart, apart.
func TestHostRand(t *testing.T) {
	seeded := func(seed byte) *countingReader {
		return &countingReader{r: mrand.NewChaCha8([32]byte{seed})}
	}
	r := seeded(1)
	src := newTestHost(t, HostOptions{Rand: r})
	if n := r.count(); n != 16 {
		t.Errorf("NewHost drew %d bytes, want 16 (the receiver id)", n)
	}
	rcv := newTestHost(t, HostOptions{})
	em, _ := src.EncMode(core.EncOptions{})
	msg, err := em.Encode(newModel(1<<20, 1, 34).body())
	if err != nil {
		t.Fatal(err)
	}
	if n := r.count(); n != 16+48 {
		t.Errorf("after an encode: %d bytes, want 64", n)
	}
	tx, err := src.Publish(msg.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	dm, _ := rcv.DecMode(core.DecOptions{})
	if _, err := dm.Decode(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
	waitTx(t, tx)
	if n := r.count(); n != 16+48+32+8 {
		t.Errorf("after a download: %d bytes, want 104", n)
	}

	mint := func(seed byte) (string, core.BatchRef) {
		h := newTestHost(t, HostOptions{Rand: seeded(seed)})
		em, _ := h.EncMode(core.EncOptions{RefThreshold: 1})
		a, _ := core.ArrayOf(nil, []float32{1})
		m, err := em.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		return h.Receiver(), m.Batch().Ref
	}
	id1, ref1 := mint(7)
	id2, ref2 := mint(7)
	id3, ref3 := mint(8)
	if id1 != id2 || ref1.RefID != ref2.RefID || ref1.Token != ref2.Token {
		t.Error("two hosts with the same seed minted differently")
	}
	if id1 == id3 || ref1.RefID == ref3.RefID || ref1.Token == ref3.Token {
		t.Error("two hosts with different seeds minted alike")
	}
}

// guestTable stands for a table that lives elsewhere: it serves through a
// core.Table but does not publish core batches, and has Close() error.
type guestTable struct {
	t      *core.Table
	closed atomic.Int32
}

func (g *guestTable) Manifest(id uuid.UUID, tok []byte, r string) (*core.Manifest, string, error) {
	return g.t.Manifest(id, tok, r)
}

func (g *guestTable) ServeVia(id uuid.UUID, tok []byte, r, hop string, item int, off, n int64) ([]byte, func(), error) {
	return g.t.ServeVia(id, tok, r, hop, item, off, n)
}

func (g *guestTable) ConfirmVia(id uuid.UUID, tok []byte, r, hop, nonce string) error {
	return g.t.ConfirmVia(id, tok, r, hop, nonce)
}

func (g *guestTable) Sweep(now time.Time) int { return g.t.Sweep(now) }
func (g *guestTable) Stats() core.Stats       { return g.t.Stats() }

func (g *guestTable) Close() error {
	g.closed.Add(1)
	g.t.Close()
	return nil
}

// TestHostNewTable: a table from HostOptions.NewTable gets the host's
// clock, randomness and table options, is served, cannot be published to
// through the host, and is closed once with the host.
func TestHostNewTable(t *testing.T) {
	clock := fakeclock.New(time.Unix(0, 1e18))
	rnd := &countingReader{r: rand.Reader}
	var got core.TableOptions
	var g *guestTable
	h := newTestHost(t, HostOptions{
		Clock: clock.Now, Rand: rnd, Table: core.TableOptions{KeepFinished: time.Hour},
		NewTable: func(o core.TableOptions) (Table, error) {
			got = o
			t, err := core.NewTable(o)
			g = &guestTable{t: t}
			return g, err
		},
	})
	if got.Clock == nil || !got.Clock().Equal(clock.Now()) || got.Rand != io.Reader(rnd) || got.KeepFinished != time.Hour {
		t.Fatalf("NewTable got %+v", got)
	}
	if h.Table() != Table(g) {
		t.Fatal("Table() is not the table NewTable made")
	}
	em, _ := h.EncMode(core.EncOptions{})
	mdl := newModel(2<<20, 2, 35)
	msg, _ := em.Encode(mdl.body())
	_, err := h.Publish(msg.Batch(), core.PublishOptions{})
	wantKind(t, err, core.KindInvalid)
	tx, err := g.t.Publish(msg.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	rcv := newTestHost(t, HostOptions{})
	dm, _ := rcv.DecMode(core.DecOptions{})
	v, err := dm.Decode(msg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
	if out := waitTx(t, tx); out.State != core.StateCompleted {
		t.Errorf("state %v", out.State)
	}
	h.Close()
	h.Close()
	if n := g.closed.Load(); n != 1 {
		t.Errorf("the table was closed %d times, want 1", n)
	}
}

// TestHostMutualTLS: hosts with one identity each (TLSFiles) and
// ClientAuth: a receiver with a certificate the CA signed downloads over
// mutual TLS; a host that trusts the CA but has none is refused with
// KindAuth, and serves cleartext.
func TestHostMutualTLS(t *testing.T) {
	pki := newPKI(t, "hosts")
	src := newTestHost(t, HostOptions{
		TLSFiles: TLSFiles{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile}, ClientAuth: true,
	})
	if !strings.HasPrefix(src.Source(), "https://") {
		t.Fatalf("Source %q", src.Source())
	}
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		rcv := newTestHost(t, HostOptions{
			TLSFiles: TLSFiles{CertFile: pki.clientCert, KeyFile: pki.clientKey, CAFile: pki.caFile}, ClientAuth: true,
			Client: ClientOptions{Protocol: proto},
		})
		mdl := newModel(1<<20, 1, 36)
		msg, tx := send(t, src, mdl.body(), core.PublishOptions{Receivers: 1})
		dm, _ := rcv.DecMode(core.DecOptions{})
		v, err := dm.Decode(msg)
		if err != nil {
			t.Fatalf("protocol %d: %v", proto, err)
		}
		if err := mdl.check(v); err != nil {
			t.Fatal(err)
		}
		if out := waitTx(t, tx); !slices.Equal(out.Confirmed(), []string{rcv.Receiver()}) {
			t.Errorf("confirmed by %v", out.Confirmed())
		}
	}
	anon := newTestHost(t, HostOptions{TLSFiles: TLSFiles{CAFile: pki.caFile}, Client: ClientOptions{Retries: -1}})
	if !strings.HasPrefix(anon.Source(), "http://") {
		t.Errorf("a host without a certificate serves at %q, want cleartext", anon.Source())
	}
	msg, tx := send(t, src, newModel(1<<20, 1, 37).body(), core.PublishOptions{})
	defer tx.Abort()
	dm, _ := anon.DecMode(core.DecOptions{})
	_, err := dm.Decode(msg)
	wantKind(t, err, core.KindAuth)
}

// TestHostOptions: each bad option is one clear error, before anything
// listens, and leaves no goroutine behind.
func TestHostOptions(t *testing.T) {
	g0 := numGoroutine()
	bad := []struct {
		o    HostOptions
		want string
	}{
		{HostOptions{Server: ServerOptions{Clock: time.Now}}, "hostdl: HostOptions.Server.Clock must be unset"},
		{HostOptions{Server: ServerOptions{Logger: quiet}}, "hostdl: HostOptions.Server.Logger must be unset"},
		{HostOptions{Client: ClientOptions{Logger: quiet}}, "hostdl: HostOptions.Client.Logger must be unset"},
		{HostOptions{Table: core.TableOptions{Clock: time.Now}}, "hostdl: HostOptions.Table.Clock must be unset"},
		{HostOptions{Table: core.TableOptions{Rand: rand.Reader}}, "hostdl: HostOptions.Table.Rand must be unset"},
		{HostOptions{TLSFiles: TLSFiles{CAFile: "ca"}, Server: ServerOptions{TLSFiles: TLSFiles{CertFile: "c", KeyFile: "k"}}}, "hostdl: HostOptions.TLSFiles or the TLS fields"},
		{HostOptions{TLSFiles: TLSFiles{CAFile: "ca"}, Client: ClientOptions{TLSFiles: TLSFiles{CAFile: "ca"}}}, "hostdl: HostOptions.TLSFiles or the TLS fields"},
		{HostOptions{TLSFiles: TLSFiles{CertFile: "c"}}, "hostdl: HostOptions.TLSFiles needs both CertFile and KeyFile"},
		{HostOptions{TLSFiles: TLSFiles{KeyFile: "k", CAFile: "ca"}}, "hostdl: HostOptions.TLSFiles needs both CertFile and KeyFile"},
		{HostOptions{ClientAuth: true}, "hostdl: HostOptions.ClientAuth needs TLSFiles with CertFile, KeyFile and CAFile"},
		{HostOptions{ClientAuth: true, TLSFiles: TLSFiles{CertFile: "c", KeyFile: "k"}}, "hostdl: HostOptions.ClientAuth needs"},
		{HostOptions{ClientAuth: true, TLSFiles: TLSFiles{CAFile: "ca"}}, "hostdl: HostOptions.ClientAuth needs"},
		{HostOptions{CloseGrace: -time.Second}, "hostdl: HostOptions.CloseGrace -1s is outside 1ms..1h0m0s"},
		{HostOptions{CloseGrace: 2 * time.Hour}, "hostdl: HostOptions.CloseGrace 2h0m0s is outside"},
		{HostOptions{RefThreshold: -1}, "hostdl: HostOptions.RefThreshold -1 is outside 1.."},
		{HostOptions{Server: ServerOptions{MaxConns: -1}}, "hostdl: ServerOptions.MaxConns -1 is outside"},
		{HostOptions{Client: ClientOptions{Concurrency: 1000}}, "hostdl: ClientOptions.Concurrency 1000 is outside"},
		{HostOptions{Client: ClientOptions{Receiver: "a b\n"}}, "hostdl: ClientOptions.Receiver must be"},
		{HostOptions{Rand: strings.NewReader("short")}, "hostdl: receiver id from HostOptions.Rand"},
		{HostOptions{Table: core.TableOptions{KeepFinished: -time.Second}}, "KeepFinished -1s is negative"},
		{HostOptions{NewTable: func(core.TableOptions) (Table, error) { return nil, errors.New("no guest") }}, "hostdl: HostOptions.NewTable: no guest"},
		{HostOptions{NewTable: func(core.TableOptions) (Table, error) { return nil, nil }}, "hostdl: HostOptions.NewTable returned no table"},
		{HostOptions{TLSFiles: TLSFiles{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}}, "certificate"},
		{HostOptions{Server: ServerOptions{Addr: "127.0.0.1:-5"}}, "hostdl: listen"},
	}
	for _, c := range bad {
		c.o.Logger = quiet
		h, err := NewHost(c.o)
		if err == nil {
			h.Close()
			t.Errorf("%+v: no error", c.o)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q, want %q", err, c.want)
		}
		wantKind(t, err, core.KindInvalid)
	}

	// Options are checked before the table is made...
	made := false
	_, err := NewHost(HostOptions{Logger: quiet, CloseGrace: -1,
		NewTable: func(o core.TableOptions) (Table, error) { made = true; return core.NewTable(o) }})
	if err == nil || made {
		t.Errorf("bad options: err %v, table made %v", err, made)
	}
	// ...and a table made before the server failed to listen is closed.
	var g *guestTable
	taken := takenPorts(t, 1)
	_, err = NewHost(HostOptions{Logger: quiet, Server: ServerOptions{Addr: "127.0.0.1:" + strconv.Itoa(taken)},
		NewTable: func(o core.TableOptions) (Table, error) {
			t, _ := core.NewTable(o)
			g = &guestTable{t: t}
			return g, nil
		}})
	if err == nil || g == nil || g.closed.Load() != 1 {
		t.Errorf("err %v, table made %v and closed %d times", err, g != nil, g.closed.Load())
	}

	// Misuse of the modes and of Publish.
	h := newTestHost(t, HostOptions{})
	if _, err := h.EncMode(core.EncOptions{Source: "http://elsewhere"}); core.KindOf(err) != core.KindInvalid {
		t.Errorf("EncMode with a Source: %v", err)
	}
	if _, err := h.EncMode(core.EncOptions{Rand: rand.Reader}); core.KindOf(err) != core.KindInvalid {
		t.Errorf("EncMode with a Rand: %v", err)
	}
	if _, err := h.EncMode(core.EncOptions{RefThreshold: -3}); core.KindOf(err) != core.KindInvalid {
		t.Errorf("EncMode with a bad RefThreshold: %v", err)
	}
	if _, err := h.DecMode(core.DecOptions{Fetcher: h.Client()}); core.KindOf(err) != core.KindInvalid {
		t.Errorf("DecMode with a Fetcher: %v", err)
	}
	other, _ := core.EncOptions{ByRef: true, Source: "http://elsewhere", RefThreshold: 1}.EncMode()
	a, _ := core.ArrayOf(nil, []float32{1, 2})
	m, _ := other.Encode(a)
	if _, err := h.Publish(m.Batch(), core.PublishOptions{}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("Publish of another source's batch: %v", err)
	}
	h.Close()
	settleGoroutines(t, g0)
}

// TestHostRefThreshold: the host's RefThreshold is EncMode's default, and
// an EncMode's own threshold wins.
func TestHostRefThreshold(t *testing.T) {
	h := newTestHost(t, HostOptions{RefThreshold: 8})
	small, _ := core.ArrayOf(nil, []float32{1, 2}) // 8 bytes
	for _, c := range []struct {
		threshold int64
		byRef     bool
	}{{0, true}, {9, false}} {
		em, err := h.EncMode(core.EncOptions{RefThreshold: c.threshold})
		if err != nil {
			t.Fatal(err)
		}
		m, err := em.Encode(small)
		if err != nil {
			t.Fatal(err)
		}
		if (m.Batch() != nil) != c.byRef {
			t.Errorf("threshold %d: by reference %v, want %v", c.threshold, m.Batch() != nil, c.byRef)
		}
	}
}

// TestLoggerFromEnv: $VIACODEC_LOG names the lowest level logged; unset or
// unknown, nothing is.
func TestLoggerFromEnv(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		env     string
		enabled []bool // debug, info, warn, error
	}{
		{"", []bool{false, false, false, false}},
		{"loud", []bool{false, false, false, false}},
		{"debug", []bool{true, true, true, true}},
		{"INFO", []bool{false, true, true, true}},
		{"Warn", []bool{false, false, true, true}},
		{"error", []bool{false, false, false, true}},
	} {
		t.Setenv(EnvLog, c.env)
		l := LoggerFromEnv()
		for i, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
			if got := l.Enabled(ctx, lv); got != c.enabled[i] {
				t.Errorf("%s=%q: level %v enabled %v", EnvLog, c.env, lv, got)
			}
		}
	}
}

// A message with every array inline has no batch, and publishing it opens
// no transaction: Publish returns nil and no error, as Python's
// Host.dumps returns None. A closed host still says it is closed.
func TestPublishAllInline(t *testing.T) {
	h := newTestHost(t, HostOptions{})
	enc, err := h.EncMode(core.EncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := core.ArrayOf(nil, []float32{1, 2}) // under the host's ref threshold
	msg, err := enc.Encode(map[string]any{"round": int64(3), "w": a})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Batch() != nil {
		t.Fatal("a batch for an array under the threshold")
	}
	tx, err := h.Publish(msg.Batch(), core.PublishOptions{Receivers: 1})
	if tx != nil || err != nil {
		t.Fatalf("Publish(nil) = %v, %v; want nil, nil", tx, err)
	}
	if s := h.Table().Stats(); s.Open != 0 {
		t.Fatalf("%d transactions open", s.Open)
	}
	h.Close()
	if _, err := h.Publish(nil, core.PublishOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish(nil) after Close: %v", err)
	}
}
