package hostdl

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/arraytest"
)

func startRelay(tb testing.TB, o RelayOptions) *Relay {
	tb.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	r, err := NewRelay(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// piecesOf counts the relay pieces of a model of tensors float32 tensors
// over size bytes.
func piecesOf(mdl *model, piece int64) int64 {
	n := int64(0)
	for _, a := range mdl.arrays {
		n += (int64(len(a.Data)) + piece - 1) / piece
	}
	return n
}

// decodeAll decodes msg with n receivers at once, named recv-0..., and
// returns their errors.
func decodeAll(t *testing.T, msg []byte, n int, mdl *model, o ClientOptions) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		o := o
		o.Receiver = fmt.Sprintf("recv-%02d", i)
		c := newTestClient(t, o)
		wg.Go(func() {
			v, err := decoder(t, c).Decode(msg)
			if err == nil {
				err = mdl.check(v)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errs
}

// TestRelayFanOut: 32 receivers behind one relay, asking at once, get the
// model bit for bit while the relay fetches each piece upstream once;
// the origin serves one copy, counts each receiver's receipt under its
// own name, and never sees the relay as a receiver. The relay frees its
// pieces once they all confirmed.
func TestRelayFanOut(t *testing.T) {
	settle := numGoroutine()
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	size := 24 << 20
	if raceOrShort() {
		size = 10 << 20
	}
	mdl := newModel(size, 3, 1)
	const receivers = 32
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: receivers})
	// A linger long enough that no receiver starts after the others all
	// confirmed, however loaded the machine: pieces are fetched once.
	relay := startRelay(t, RelayOptions{Linger: 2 * time.Second, Server: ServerOptions{SweepInterval: 10 * time.Millisecond}})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := core.DecOptions{PassThrough: true}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := v.Decode(held)
	if err != nil {
		t.Fatal(err)
	}
	for k, x := range lazy.(map[string]any) {
		if b := x.(*core.LazyRef).Batch; b.Holder != relay.Source() || b.Source != origin.Source() {
			t.Fatalf("%s: forwarded batch %v, want held at %s for %s", k, b, relay.Source(), origin.Source())
		}
	}
	for i, err := range decodeAll(t, held, receivers, mdl, ClientOptions{}) {
		if err != nil {
			t.Fatalf("receiver %d: %v", i, err)
		}
	}
	out, err := tx.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ids := out.Confirmed()
	slices.Sort(ids)
	if out.State != core.StateCompleted || len(ids) != receivers || ids[0] != "recv-00" || ids[receivers-1] != fmt.Sprintf("recv-%02d", receivers-1) {
		t.Fatalf("outcome %v confirmed by %v; want completed by the 32 receivers", out.State, ids)
	}
	st := relay.Stats()
	if want := piecesOf(mdl, DefaultRelayPiece); st.UpstreamPieces != want || st.UpstreamBytes != int64(size) {
		t.Errorf("relay fetched %d pieces, %d bytes upstream; want %d pieces, %d bytes (one fetch per piece)", st.UpstreamPieces, st.UpstreamBytes, want, size)
	}
	if got := origin.Stats().BytesServed; got != int64(size) {
		t.Errorf("the origin served %d bytes, want one copy: %d", got, size)
	}
	if st.Server.BytesServed != receivers*int64(size) {
		t.Errorf("the relay served %d bytes, want %d", st.Server.BytesServed, receivers*int64(size))
	}
	if st.PeakBytes > DefaultRelayBudget {
		t.Errorf("peak %d bytes over the budget", st.PeakBytes)
	}
	for deadline := time.Now().Add(20 * time.Second); relay.Stats().HeldBytes != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after every receipt and the linger the relay holds %d bytes", relay.Stats().HeldBytes)
		}
	}
	relay.Close()
	origin.Close()
	settleGoroutines(t, settle)
}

// TestRelayChain: origin → regional relay → site relay → receivers. Each
// relay fetches one copy from the hop above it.
func TestRelayChain(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	mdl := newModel(9<<20, 2, 2)
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: 4})
	regional := startRelay(t, RelayOptions{})
	site := startRelay(t, RelayOptions{})
	m1, err := regional.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := site.Forward(m1)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range decodeAll(t, m2, 4, mdl, ClientOptions{}) {
		if err != nil {
			t.Fatalf("receiver %d: %v", i, err)
		}
	}
	if out, err := tx.Wait(t.Context()); err != nil || out.State != core.StateCompleted {
		t.Fatalf("origin outcome %v, %v", out.State, err)
	}
	for _, r := range []*Relay{regional, site} {
		if st := r.Stats(); st.UpstreamBytes != int64(len(mdl.raw)) {
			t.Errorf("%v fetched %d bytes upstream, want %d", r, st.UpstreamBytes, len(mdl.raw))
		}
	}
	if got := origin.Stats().BytesServed; got != int64(len(mdl.raw)) {
		t.Errorf("origin served %d bytes, want %d", got, len(mdl.raw))
	}
}

// TestRelayUpstreamCorrupt: an upstream that corrupts a piece's bytes is
// caught by the relay against the origin's checksums; the piece is
// fetched again and the receivers get the right value.
func TestRelayUpstreamCorrupt(t *testing.T) {
	table := newTable(t)
	var corrupted atomic.Int32
	origin, err := newServer(table, ServerOptions{Logger: quiet}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.Header.Get("Range") != "" && corrupted.CompareAndSwap(0, 1) {
				w = &flipWriter{ResponseWriter: w, at: 1000}
			}
			h.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	mdl := newModel(6<<20, 2, 3)
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: 3})
	relay := startRelay(t, RelayOptions{Client: ClientOptions{BackoffMin: time.Millisecond}})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range decodeAll(t, held, 3, mdl, ClientOptions{}) {
		if err != nil {
			t.Fatalf("receiver %d: %v", i, err)
		}
	}
	if corrupted.Load() != 1 {
		t.Fatal("no piece was corrupted")
	}
	if out, err := tx.Wait(t.Context()); err != nil || out.State != core.StateCompleted {
		t.Fatalf("origin outcome %v, %v", out.State, err)
	}
	if st := relay.Stats(); st.UpstreamBytes != int64(len(mdl.raw)) || origin.Stats().BytesServed <= int64(len(mdl.raw)) {
		t.Errorf("relay verified %d bytes, origin served %d: want %d verified and the bad block served again",
			st.UpstreamBytes, origin.Stats().BytesServed, len(mdl.raw))
	}
}

// flipWriter flips one bit of the body at byte at.
type flipWriter struct {
	http.ResponseWriter
	at, n int
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.at >= f.n && f.at < f.n+len(p) {
		q := slices.Clone(p)
		q[f.at-f.n] ^= 1
		p = q
	}
	f.n += len(p)
	return f.ResponseWriter.Write(p)
}

// TestRelayDiesMidBatch: a relay that goes away while a receiver
// downloads through it. The receiver falls back to the origin and gets
// the right value, and its receipt completes the origin's transaction;
// with the origin gone as well, it gets a clear unavailable error and no
// value.
func TestRelayDiesMidBatch(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	mdl := newModel(12<<20, 3, 4)
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: 1})
	relay := startRelay(t, RelayOptions{})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	c := newTestClient(t, ClientOptions{
		Concurrency: 1, Retries: 1, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond,
		Progress: func(_ uuid.UUID, done, _ int64) {
			if done > 0 {
				once.Do(func() { relay.Close() })
			}
		},
	})
	v, err := decoder(t, c).Decode(held)
	if err != nil {
		t.Fatalf("after the relay died: %v", err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
	if out, err := tx.Wait(t.Context()); err != nil || out.State != core.StateCompleted {
		t.Fatalf("origin outcome %v, %v", out.State, err)
	}

	// Both gone: a clear error.
	msg, _ = publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: 1})
	relay2 := startRelay(t, RelayOptions{})
	held, err = relay2.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	relay2.Close()
	origin.Close()
	_, err = decoder(t, newTestClient(t, ClientOptions{Retries: -1})).Decode(held)
	wantKind(t, err, core.KindUnavailable)
}

// TestRelayCannotConfirmForReceiver: under mutual TLS with named
// receivers, a relay presents its own certificate upstream, so the
// manifest and receipt it forwards in a receiver's name are refused (403,
// auth): no hop can confirm on a receiver's behalf, and the origin's
// transaction stays open.
func TestRelayCannotConfirmForReceiver(t *testing.T) {
	pki := newPKI(t, "hop")
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{TLSFiles: TLSFiles{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile}})
	mdl := newModel(2<<20, 1, 5)
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Names: []string{"agent"}})
	relay := startRelay(t, RelayOptions{Client: ClientOptions{TLS: pki.clientConfig("relay"), Retries: -1}})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	agent := newTestClient(t, ClientOptions{Receiver: "agent", Retries: -1})
	_, err = decoder(t, agent).Decode(held)
	wantKind(t, err, core.KindAuth)
	if _, done := tx.Outcome(); done {
		t.Fatal("the transaction ended on a relay's word")
	}
	if _, st := tx.Status(); len(st) != 0 {
		t.Fatalf("the origin recorded %v", st)
	}
}

// TestRelayBudget: a relay whose budget is smaller than the model serves
// every receiver anyway: pieces nobody reads are spilled to disk (or
// dropped and fetched again), and memory never exceeds the budget.
func TestRelayBudget(t *testing.T) {
	for _, spill := range []bool{true, false} {
		t.Run(fmt.Sprintf("spill=%v", spill), func(t *testing.T) {
			table := newTable(t)
			origin := startServer(t, table, ServerOptions{})
			mdl := newModel(40<<20, 4, 6)
			msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: 3})
			o := RelayOptions{Budget: 16 << 20, Linger: time.Hour} // receivers come one after the other
			if spill {
				o.SpillDir = t.TempDir()
			}
			relay := startRelay(t, o)
			held, err := relay.Forward(msg)
			if err != nil {
				t.Fatal(err)
			}
			// One receiver after the other: the first one's pieces no
			// longer fit when the next one comes.
			for i := range 3 {
				c := newTestClient(t, ClientOptions{Receiver: fmt.Sprintf("r%d", i), Concurrency: 2})
				v, err := decoder(t, c).Decode(held)
				if err == nil {
					err = mdl.check(v)
				}
				if err != nil {
					t.Fatalf("receiver %d: %v", i, err)
				}
			}
			if out, err := tx.Wait(t.Context()); err != nil || out.State != core.StateCompleted {
				t.Fatalf("origin outcome %v, %v", out.State, err)
			}
			st := relay.Stats()
			if st.PeakBytes > o.Budget {
				t.Errorf("peak %d bytes over the budget %d", st.PeakBytes, o.Budget)
			}
			if spill && (st.SpilledBytes == 0 || st.UpstreamBytes != int64(len(mdl.raw))) {
				t.Errorf("spilled %d bytes, fetched %d upstream; want a spill and one copy", st.SpilledBytes, st.UpstreamBytes)
			}
			if !spill && st.UpstreamBytes <= int64(len(mdl.raw)) {
				t.Errorf("without a spill dir the relay fetched %d bytes, want pieces fetched again", st.UpstreamBytes)
			}
		})
	}
}

// TestRelayRefusesStrangers: a relay answers unknown refs 404 and wrong
// tokens 403, and validates its options.
func TestRelayRefusesStrangers(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	mdl := newModel(1<<20, 1, 7)
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Names: []string{"a"}})
	defer tx.Abort()
	relay := startRelay(t, RelayOptions{})
	if _, err := relay.Forward(msg); err != nil {
		t.Fatal(err)
	}
	ref := tx.Ref()
	ref.Holder = relay.Source()
	// Receivers the origin refuses leave nothing at the relay either.
	for i := range 20 {
		stranger := newTestClient(t, ClientOptions{Receiver: fmt.Sprint("x", i), Retries: -1})
		wantKind(t, stranger.Fetch(t.Context(), ref, nil), core.KindAuth)
	}
	if n := relay.Stats().Server.Table.ReceiversActive; n != 0 {
		t.Errorf("the relay records %d receivers the origin refused", n)
	}
	wrong := ref
	wrong.Token[0] ^= 1
	c := newTestClient(t, ClientOptions{Retries: -1})
	wantKind(t, c.Fetch(t.Context(), wrong, nil), core.KindAuth)
	unknown := ref
	unknown.RefID[0] ^= 1
	wantKind(t, c.Fetch(t.Context(), unknown, nil), core.KindUnknownRef)
	wrong.Holder = ""
	if err := relay.Hold(wrong); core.KindOf(err) != core.KindAuth {
		t.Errorf("holding a batch again under another token: %v", err)
	}
	if err := relay.Shutdown(t.Context()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := relay.Hold(tx.Ref()); core.KindOf(err) != core.KindInvalid {
		t.Errorf("holding after shutdown: %v, want invalid", err)
	}
	for _, o := range []RelayOptions{{Budget: 1}, {Idle: -1}, {PieceSize: 1 << 30}, {SpillDir: "/nonexistent/dir"}} {
		if _, err := NewRelay(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("NewRelay(%+v): %v, want invalid", o, err)
		}
	}
}

// TestRelayRangesAcrossPieces: receivers whose ranges span several of the
// relay's pieces (4 MiB ranges, 1 MiB pieces) get the model bit for bit,
// and the relay serves those ranges from its pieces in turn, never
// copying them into one buffer: what the process allocates while 8
// receivers download is far below the 8 copies a copy per range would
// make, and the pieces stay within the budget.
func TestRelayRangesAcrossPieces(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	size := 8 << 20
	mdl := newModel(size, 2, 5)
	const receivers = 8
	msg, _ := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: receivers})
	relay := startRelay(t, RelayOptions{PieceSize: 1 << 20, Budget: 16 << 20, Linger: 2 * time.Second})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	clients := make([]*Client, receivers)
	arenas := make([][]byte, receivers)
	for i := range clients {
		clients[i] = newTestClient(t, ClientOptions{Receiver: fmt.Sprintf("recv-%d", i), ChunkSize: 4 << 20})
		arenas[i] = make([]byte, size)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	errs := make([]error, receivers)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			dm, err := core.DecOptions{Fetcher: c, Allocator: arraytest.Arena(arenas[i])}.DecMode()
			if err == nil {
				var v any
				if v, err = dm.Decode(held); err == nil {
					err = mdl.check(v)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("receiver %d: %v", i, err)
		}
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 3*uint64(size) {
		t.Errorf("%d MiB allocated while %d receivers downloaded %d MiB through the relay: ranges copied", got>>20, receivers, size>>20)
	}
	if st := relay.Stats(); st.PeakBytes > 16<<20 || st.UpstreamBytes != int64(size) {
		t.Errorf("relay peak %d bytes (budget 16 MiB), %d bytes fetched upstream (want %d)", st.PeakBytes, st.UpstreamBytes, size)
	}
}

// TestRelayPieceUnavailableStatus: a range whose first piece the relay
// cannot fetch (the origin went away after the manifest) is answered with
// the error's status and body, not a response whose body ends early.
func TestRelayPieceUnavailableStatus(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	mdl := newModel(2<<20, 1, 6)
	msg, _ := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{})
	relay := startRelay(t, RelayOptions{Client: ClientOptions{Retries: -1}})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := core.MustMode(core.DecOptions{PassThrough: true}.DecMode()).Decode(held)
	if err != nil {
		t.Fatal(err)
	}
	var ref core.BatchRef
	for _, x := range lazy.(map[string]any) {
		ref = x.(*core.LazyRef).Batch
	}
	hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: "r"}
	url := relay.Source() + "/v1/batches/" + ref.RefID.String() + "/"
	if code, body, _ := rawDo(t, http.MethodGet, url+"manifest", hdr); code != http.StatusOK {
		t.Fatalf("manifest: %d %s", code, body)
	}
	origin.Close()
	hdr["Range"] = "bytes=0-1048575"
	code, body, _ := rawDo(t, http.MethodGet, url+"items/0", hdr)
	if code != http.StatusServiceUnavailable || errKind(t, body) != core.KindUnavailable.String() {
		t.Fatalf("a piece the relay cannot fetch: %d %q, want 503 unavailable", code, body)
	}
}

// TestRelayTrustedHop: under mutual TLS, an origin that trusts the
// relay's certificate (ServerOptions.TrustedHops) lets it ask and confirm
// for the receivers behind it: a named receiver gets the model through
// the relay and the origin counts its receipt under its own name; a
// receiver the transaction does not name is still refused, and a trusted
// hop that names no receiver is refused (400).
func TestRelayTrustedHop(t *testing.T) {
	pki := newPKI(t, "hop")
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{
		TLSFiles:    TLSFiles{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile},
		TrustedHops: []string{"relay-a"},
	})
	mdl := newModel(2<<20, 1, 5)
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Names: []string{"agent"}})
	relay := startRelay(t, RelayOptions{Client: ClientOptions{TLS: pki.clientConfig("relay-a"), Retries: -1}})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newTestClient(t, ClientOptions{Receiver: "stranger", Retries: -1})
	_, err = decoder(t, stranger).Decode(held)
	wantKind(t, err, core.KindAuth)
	agent := newTestClient(t, ClientOptions{Receiver: "agent", Retries: -1})
	v, err := decoder(t, agent).Decode(held)
	if err != nil {
		t.Fatal(err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
	out, err := tx.Wait(t.Context())
	if err != nil || out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent"}) {
		t.Fatalf("outcome %+v, %v; want completed by agent", out, err)
	}

	// The hop must say whom it asks for.
	msg, _ = publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{})
	lazy, err := core.MustMode(core.DecOptions{PassThrough: true}.DecMode()).Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	var ref core.BatchRef
	for _, x := range lazy.(map[string]any) {
		ref = x.(*core.LazyRef).Batch
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.clientConfig("relay-a")}}
	defer hc.CloseIdleConnections()
	code, body, _ := doWith(t, hc, http.MethodGet, batchURL(origin, ref, "manifest"), map[string]string{"Authorization": bearer(ref)})
	if code != http.StatusBadRequest || errKind(t, body) != core.KindInvalid.String() {
		t.Fatalf("a trusted hop that names no receiver: %d %s", code, body)
	}
}

func TestTrustedHopsChecked(t *testing.T) {
	for _, hops := range [][]string{{""}, {"bad\nname"}, make([]string, core.DefaultMaxReceivers+1)} {
		if _, err := NewServer(newTable(t), ServerOptions{TrustedHops: hops, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "TrustedHops") {
			t.Errorf("TrustedHops %q: %v", hops[:min(len(hops), 2)], err)
		}
	}
}
