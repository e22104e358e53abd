package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/viacodec/viacodec/internal/fakeclock"
)

// node is one process of a round: a table that serves what it encodes by
// reference, under a source name.
type node struct {
	name  string
	table *Table
	enc   *EncMode
}

func newNode(t testing.TB, name string, clock *fakeclock.Clock) *node {
	t.Helper()
	o := TableOptions{}
	if clock != nil {
		o.Clock = clock.Now
	}
	tbl, err := NewTable(o)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncOptions{ByRef: true, RefThreshold: 64, Source: name}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	return &node{name: name, table: tbl, enc: enc}
}

// send encodes v by reference and publishes the batch, if any.
func (n *node) send(t testing.TB, v any, o PublishOptions) ([]byte, *Transaction) {
	t.Helper()
	msg, err := n.enc.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	var tx *Transaction
	if b := msg.Batch(); b != nil {
		if tx, err = n.table.Publish(b, o); err != nil {
			t.Fatal(err)
		}
	}
	return msg.Bytes(), tx
}

func receiverMode(t testing.TB, id string, nodes ...*node) *DecMode {
	t.Helper()
	f := &TableFetcher{Sources: map[string]*Table{}, Receiver: id}
	for _, n := range nodes {
		f.Sources[n.name] = n.table
	}
	m, err := DecOptions{Fetcher: f}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var passThrough = MustMode(DecOptions{PassThrough: true}.DecMode())

func f32Array(t testing.TB, n int, seed float32) *Array {
	v := make([]float32, n)
	for i := range v {
		v[i] = seed + float32(i)
	}
	a, err := ArrayOf(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sameArray(a *Array, b any) bool {
	x, ok := b.(*Array)
	return ok && x.DType == a.DType && slices.Equal(x.Shape, a.Shape) && bytes.Equal(x.Data, a.Data)
}

func TestByRefRoundTrip(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, 1000, 1)
	small := f32Array(t, 4, 7) // 16 bytes: below the threshold, inline
	data, tx := src.send(t, map[string]any{"round": 3, "w": w, "again": w, "small": small}, PublishOptions{Receivers: 1})
	if tx == nil {
		t.Fatal("no transaction for a by-ref message")
	}
	b := tx.Ref()
	if b.Items != 1 || b.Bytes != 4000 || b.Source != "server" {
		t.Fatalf("batch %v: want one deduplicated 4000-byte item", b)
	}
	v, err := receiverMode(t, "agent", src).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if !sameArray(w, m["w"]) || !sameArray(small, m["small"]) || m["w"] != m["again"] {
		t.Fatal("decoded arrays differ, or the duplicate is not the same value")
	}
	out, err := tx.Wait(context.Background())
	if err != nil || out.State != StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent"}) {
		t.Fatalf("outcome %+v, %v", out, err)
	}
}

func TestByRefItemsViewCallerMemory(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, 1000, 1)
	msg, err := src.enc.Encode([]any{w})
	if err != nil {
		t.Fatal(err)
	}
	if d := msg.Batch().Items[0].Data; &d[0] != &w.Data[0] {
		t.Fatal("batch item copied the array")
	}
	// No array at or above the threshold: no batch, no transaction.
	msg, _ = src.enc.Encode([]any{f32Array(t, 2, 0)})
	if msg.Batch() != nil {
		t.Fatal("batch without references")
	}
}

func TestItemLargerThanChunkIsServedAsRanges(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, (3<<20+512<<10)/4, 0) // 3.5 MiB
	data, _ := src.send(t, []any{w}, PublishOptions{Receivers: 1})
	f := &TableFetcher{Sources: map[string]*Table{"server": src.table}, Receiver: "agent", ChunkSize: 1 << 20}
	dm, _ := DecOptions{Fetcher: f}.DecMode()
	v, err := dm.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !sameArray(w, v.([]any)[0]) {
		t.Fatal("not bit-exact")
	}
	if got := src.table.Stats().Serves; got != 4 {
		t.Fatalf("%d serves, want 4 ranges of at most 1 MiB", got)
	}
}

// TestRelayChain sends from two sources through three pass-through relays,
// each adding arrays of its own, to one agent.
func TestRelayChain(t *testing.T) {
	server, server2 := newNode(t, "server", nil), newNode(t, "server2", nil)
	relays := []*node{newNode(t, "relay1", nil), newNode(t, "relay2", nil), newNode(t, "relay3", nil)}
	a, b := f32Array(t, 100, 1), f32Array(t, 200, 2)
	c := f32Array(t, 300, 3) // a second batch of the same dtype, from another source
	msg1, tx1 := server.send(t, map[string]any{"a": a, "b": b}, PublishOptions{Receivers: 1})
	msg2, tx2 := server2.send(t, map[string]any{"c": c}, PublishOptions{Receivers: 1})

	// relay1 merges both messages: lazy refs of two batches in one message.
	v1, err := passThrough.Decode(msg1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := passThrough.Decode(msg2)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{v1, v2} {
		for k, x := range v.(map[string]any) {
			if _, lazy := x.(*LazyRef); !lazy {
				t.Fatalf("relay holds %s as %T, want a lazy ref", k, x)
			}
		}
	}
	fresh := []*Array{f32Array(t, 50, 10), f32Array(t, 60, 20), f32Array(t, 70, 30)}
	var txs []*Transaction
	msg := []any{v1, v2}
	var data []byte
	for i, r := range relays {
		var tx *Transaction
		data, tx = r.send(t, append(msg, fresh[i]), PublishOptions{Receivers: 1})
		txs = append(txs, tx)
		if msg, err = passThroughList(data); err != nil && i < len(relays)-1 {
			t.Fatal(err)
		}
	}
	agent := receiverMode(t, "agent", append(relays, server, server2)...)
	got, err := agent.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	// [[v1, v2, fresh0], fresh1], fresh2] after three hops.
	l := got.([]any)
	if !sameArray(fresh[2], l[len(l)-1]) {
		t.Fatal("relay3's array differs")
	}
	l = l[0].([]any)
	if !sameArray(fresh[1], l[len(l)-1]) {
		t.Fatal("relay2's array differs")
	}
	l = l[0].([]any)
	if !sameArray(fresh[0], l[2]) || !sameArray(a, l[0].(map[string]any)["a"]) ||
		!sameArray(b, l[0].(map[string]any)["b"]) || !sameArray(c, l[1].(map[string]any)["c"]) {
		t.Fatal("source arrays differ after three relays")
	}
	// Every source counts the agent, and only the agent: a forward is never a receipt.
	for _, tx := range append([]*Transaction{tx1, tx2}, txs...) {
		out, err := tx.Wait(context.Background())
		if err != nil || out.State != StateCompleted || len(out.Receivers) != 1 || out.Receivers[0].ID != "agent" {
			t.Fatalf("outcome of %s: %+v, %v", tx.Ref(), out, err)
		}
	}
	// The relays never downloaded: their batches are theirs alone.
	if n := server.table.Stats().BytesServed; n != int64(len(a.Data)+len(b.Data)) {
		t.Fatalf("server served %d bytes, want exactly one copy", n)
	}
}

func passThroughList(data []byte) ([]any, error) {
	v, err := passThrough.Decode(data)
	if err != nil {
		return nil, err
	}
	return []any{v}, nil
}

func TestLazyRefResolve(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, 1000, 5)
	data, tx := src.send(t, []any{w}, PublishOptions{Receivers: 1})
	v, err := passThrough.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	l := v.([]any)[0].(*LazyRef)
	if l.DType != DTypeFloat32 || !slices.Equal(l.Shape, []int{1000}) || l.Bytes() != 4000 || l.Batch.Source != "server" {
		t.Fatalf("lazy ref %v", l)
	}
	if _, err := l.Resolve(context.Background(), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil fetcher: %v", err)
	}
	a, err := l.Resolve(context.Background(), &TableFetcher{Sources: map[string]*Table{"server": src.table}, Receiver: "late"})
	if err != nil || !sameArray(w, a) {
		t.Fatalf("resolve: %v", err)
	}
	if out, _ := tx.Wait(context.Background()); out.State != StateCompleted {
		t.Fatalf("outcome %v", out.State)
	}
	// Lazy refs in a message that also references fresh arrays keep their
	// own descriptor, once however often they appear.
	hop := newNode(t, "hop", nil)
	msg, err := hop.enc.Encode([]any{l, l, f32Array(t, 100, 0)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := passThrough.Decode(msg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	refs := again.([]any)
	if refs[0] != refs[1] || refs[0].(*LazyRef).Batch != l.Batch || refs[2].(*LazyRef).Batch.Source != "hop" {
		t.Fatalf("re-emitted refs: %v", refs)
	}
}

func TestTransactionOutcomes(t *testing.T) {
	clock := fakeclock.New(fakeclock.Start)
	src := newNode(t, "server", clock)
	w := f32Array(t, 100, 0)
	fetch := func(receiver string, data []byte) error {
		_, err := receiverMode(t, receiver, src).Decode(data)
		return err
	}

	t.Run("timeout", func(t *testing.T) {
		var calls int
		_, tx := src.send(t, []any{w}, PublishOptions{Receivers: 2, Timeout: time.Minute, OnDone: func(Outcome) { calls++ }})
		if n := src.table.Sweep(clock.Advance(59 * time.Second)); n != 0 {
			t.Fatal("ended before its timeout")
		}
		if n := src.table.Sweep(clock.Advance(time.Second)); n != 1 {
			t.Fatal("did not end at its timeout")
		}
		out, _ := tx.Outcome()
		if out.State != StateTimedOut || calls != 1 {
			t.Fatalf("state %v, OnDone called %d times", out.State, calls)
		}
		src.table.Sweep(clock.Advance(time.Hour))
		if calls != 1 {
			t.Fatal("OnDone called again")
		}
	})

	t.Run("quorum", func(t *testing.T) {
		data, tx := src.send(t, []any{w}, PublishOptions{Receivers: 3, Quorum: 2, Timeout: time.Minute})
		for _, r := range []string{"a", "b"} {
			if err := fetch(r, data); err != nil {
				t.Fatal(err)
			}
		}
		// "c" reads the manifest and stops.
		ref := tx.Ref()
		if _, _, err := src.table.Manifest(ref.RefID, ref.Token[:], "c"); err != nil {
			t.Fatal(err)
		}
		src.table.Sweep(clock.Advance(time.Minute))
		out, _ := tx.Outcome()
		if out.State != StateQuorumMet || !slices.Equal(out.Confirmed(), []string{"a", "b"}) || out.Receivers[2].State != ReceiverFailed {
			t.Fatalf("outcome %+v", out)
		}
	})

	t.Run("unknown receivers", func(t *testing.T) {
		data, tx := src.send(t, []any{w}, PublishOptions{Timeout: time.Minute})
		if err := fetch("a", data); err != nil {
			t.Fatal(err)
		}
		if _, done := tx.Outcome(); done {
			t.Fatal("a transaction with unknown receivers ended before its timeout")
		}
		src.table.Sweep(clock.Advance(time.Minute))
		if out, _ := tx.Outcome(); out.State != StateQuorumMet {
			t.Fatalf("state %v", out.State)
		}
	})

	t.Run("late receiver", func(t *testing.T) {
		data, tx := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		if err := fetch("a", data); err != nil {
			t.Fatal(err)
		}
		if out, _ := tx.Outcome(); out.State != StateCompleted {
			t.Fatalf("state %v", out.State)
		}
		if err := fetch("late", data); !errors.Is(err, ErrExpired) {
			t.Fatalf("late receiver: %v, want ErrExpired", err)
		}
		src.table.Sweep(clock.Advance(DefaultKeepFinished - time.Second))
		if err := fetch("later", data); !errors.Is(err, ErrExpired) {
			t.Fatalf("within KeepFinished: %v, want ErrExpired", err)
		}
		src.table.Sweep(clock.Advance(time.Second))
		if err := fetch("much later", data); !errors.Is(err, ErrUnknownRef) {
			t.Fatalf("after KeepFinished: %v, want ErrUnknownRef", err)
		}
	})

	t.Run("abort and delete", func(t *testing.T) {
		data, tx := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		tx.Abort()
		if out, _ := tx.Outcome(); out.State != StateAborted {
			t.Fatalf("state %v", out.State)
		}
		if err := fetch("a", data); !errors.Is(err, ErrExpired) {
			t.Fatalf("after abort: %v", err)
		}
		_, tx = src.send(t, []any{w}, PublishOptions{Receivers: 1})
		if err := src.table.Delete(tx.Ref().RefID); err != nil {
			t.Fatal(err)
		}
		if out, _ := tx.Outcome(); out.State != StateDeleted {
			t.Fatalf("state %v", out.State)
		}
		_, tx = src.send(t, []any{w}, PublishOptions{Receivers: 1})
		src.table.Close()
		if out, _ := tx.Outcome(); out.State != StateDeleted || src.table.Stats().Open != 0 {
			t.Fatalf("close: %v", out.State)
		}
	})

	t.Run("wait", func(t *testing.T) {
		_, tx := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if _, err := tx.Wait(ctx); !errors.Is(err, ErrTimeout) {
			t.Fatalf("wait: %v", err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if _, err := tx.Wait(ctx); !errors.Is(err, ErrAborted) {
			t.Fatalf("wait: %v", err)
		}
		tx.Abort()
	})

	t.Run("views released", func(t *testing.T) {
		_, tx := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		ref := tx.Ref()
		data, release, err := src.table.Serve(ref.RefID, ref.Token[:], "a", 0, 0, 8)
		if err != nil || len(data) != 8 {
			t.Fatal(err)
		}
		tx.Abort()
		if _, done := tx.Outcome(); done {
			t.Fatal("ended while a serve was still writing the caller's bytes")
		}
		release()
		release() // twice is harmless
		if _, done := tx.Outcome(); !done {
			t.Fatal("not ended after the last serve")
		}
		if tx.batch.Items != nil {
			t.Fatal("item views kept after the end")
		}
	})
}

func TestSnapshot(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, 100, 0)
	want := bytes.Clone(w.Data)
	data, _ := src.send(t, []any{w}, PublishOptions{Receivers: 1, Snapshot: true})
	w.Data[0] ^= 0xff // the caller changes its array at once
	v, err := receiverMode(t, "a", src).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.([]any)[0].(*Array).Data, want) {
		t.Fatal("snapshot did not keep the published bytes")
	}
}

func TestTableAccessErrors(t *testing.T) {
	src := newNode(t, "server", nil)
	_, tx := src.send(t, []any{f32Array(t, 100, 0)}, PublishOptions{Receivers: 1})
	ref := tx.Ref()
	tok := ref.Token[:]
	bad := bytes.Clone(tok)
	bad[0] ^= 1
	tests := []struct {
		name string
		err  error
		kind Kind
	}{
		{"wrong token", second(src.table.Serve(ref.RefID, bad, "a", 0, 0, 4)), KindAuth},
		{"short token", second(src.table.Serve(ref.RefID, tok[:8], "a", 0, 0, 4)), KindAuth},
		{"no receiver", second(src.table.Serve(ref.RefID, tok, "", 0, 0, 4)), KindInvalid},
		{"unknown ref", second(src.table.Serve([16]byte{1}, tok, "a", 0, 0, 4)), KindUnknownRef},
		{"unknown item", second(src.table.Serve(ref.RefID, tok, "a", 1, 0, 4)), KindUnknownRef},
		{"range past end", second(src.table.Serve(ref.RefID, tok, "a", 0, 398, 4)), KindInvalid},
		{"negative offset", second(src.table.Serve(ref.RefID, tok, "a", 0, -1, 4)), KindInvalid},
		{"receipt without manifest", src.table.Confirm(ref.RefID, tok, "b", "00"), KindAuth},
		{"receipt with wrong nonce", func() error {
			_, nonce, _ := src.table.Manifest(ref.RefID, tok, "c")
			return src.table.Confirm(ref.RefID, tok, "c", nonce[:len(nonce)-1]+"x")
		}(), KindAuth},
		{"publish twice", func() error { _, err := src.table.Publish(tx.batch, PublishOptions{}); return err }(), KindInvalid},
		{"quorum above receivers", func() error {
			_, err := src.table.Publish(&Batch{}, PublishOptions{Receivers: 1, Quorum: 2})
			return err
		}(), KindInvalid},
		{"negative timeout", func() error { _, err := src.table.Publish(&Batch{}, PublishOptions{Timeout: -1}); return err }(), KindInvalid},
		{"nil batch", func() error { _, err := src.table.Publish(nil, PublishOptions{}); return err }(), KindInvalid},
	}
	for _, tt := range tests {
		if KindOf(tt.err) != tt.kind {
			t.Errorf("%s: got %v, want kind %v", tt.name, tt.err, tt.kind)
		}
	}
	if _, err := (EncOptions{ByRef: true}).EncMode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("ByRef without Source: %v", err)
	}
	if _, err := NewTable(TableOptions{KeepFinished: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative KeepFinished: %v", err)
	}
}

func second[T any](_ T, _ func(), err error) error { return err }

// TestHammer runs 32 rounds at once on one source table.
func TestHammer(t *testing.T) {
	src := newNode(t, "server", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			w := f32Array(t, 1000+g, float32(g))
			msg, err := src.enc.Encode(map[string]any{"g": g, "w": w})
			if err != nil {
				errs <- err
				return
			}
			tx, err := src.table.Publish(msg.Batch(), PublishOptions{Receivers: 2})
			if err != nil {
				errs <- err
				return
			}
			data := msg.Bytes()
			for r := range 2 {
				v, err := receiverMode(t, fmt.Sprintf("agent-%d-%d", g, r), src).Decode(data)
				if err != nil {
					errs <- err
					return
				}
				if !sameArray(w, v.(map[string]any)["w"]) {
					errs <- fmt.Errorf("round %d: not bit-exact", g)
					return
				}
			}
			if out, err := tx.Wait(context.Background()); err != nil || out.State != StateCompleted || len(out.Confirmed()) != 2 {
				errs <- fmt.Errorf("round %d: outcome %+v %v", g, out, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := src.table.Stats(); s.Open != 0 {
		t.Fatalf("%d transactions left open", s.Open)
	}
}

// TestParallelManifestsOfOneReceiver: a receiver that fetches parts of a
// batch in parallel gets a nonce per manifest, and a receipt with any of
// them counts, the oldest too.
func TestParallelManifestsOfOneReceiver(t *testing.T) {
	src := newNode(t, "server", nil)
	_, tx := src.send(t, []any{f32Array(t, 100, 0)}, PublishOptions{Receivers: 2})
	ref := tx.Ref()
	var nonces []string
	for range 17 {
		_, n, err := src.table.Manifest(ref.RefID, ref.Token[:], "a")
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(nonces, n) {
			t.Fatalf("nonce %s given twice", n)
		}
		nonces = append(nonces, n)
	}
	serveAll(t, src.table, ref, "a")
	for _, i := range []int{0, 1, 16} {
		if err := src.table.Confirm(ref.RefID, ref.Token[:], "a", nonces[i]); err != nil {
			t.Fatalf("nonce %d of 17: %v", i, err)
		}
	}
	if _, rs := tx.Status(); len(rs) != 1 || rs[0].State != ReceiverConfirmed {
		t.Fatalf("receivers %+v", rs)
	}
}

// TestByRefItemPerView: an array sent twice is one item; the same memory
// with another shape, dtype or length is an item of its own.
func TestByRefItemPerView(t *testing.T) {
	mode, err := EncOptions{ByRef: true, RefThreshold: 1, Source: "s"}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	w := f32Array(t, 12, 1)
	flat := mustArray(t, DTypeFloat32, []int{12}, RowMajor, w.Data)
	square := mustArray(t, DTypeFloat32, []int{3, 4}, RowMajor, w.Data)
	bytesView := mustArray(t, DTypeUint8, []int{48}, RowMajor, w.Data)
	half := mustArray(t, DTypeFloat32, []int{6}, RowMajor, w.Data[:24])
	msg, err := mode.Encode([]any{flat, square, flat, bytesView, half, square})
	if err != nil {
		t.Fatal(err)
	}
	items := msg.Batch().Items
	if len(items) != 4 {
		t.Fatalf("%d items, want 4 (flat, square, bytes, half)", len(items))
	}
	for i, want := range [][]int{{12}, {3, 4}, {48}, {6}} {
		if !slices.Equal(items[i].Shape, want) {
			t.Fatalf("item %d has shape %v, want %v", i, items[i].Shape, want)
		}
	}
}

// TestManifestDescribesEveryItem: the manifest lists every item, short
// and empty ones included, with its piece size and no checksums (they
// travel with the pieces), and survives its CBOR form.
func TestManifestDescribesEveryItem(t *testing.T) {
	sizes := []int{0, 1, DefaultBlockSize, DefaultBlockSize + 1, 9*DefaultBlockSize + 3, 5}
	b := &Batch{}
	for i, n := range sizes {
		b.Items = append(b.Items, Item{ID: i, DType: DTypeUint8, Shape: []int{n}, Data: make([]byte, n)})
	}
	m := b.Manifest()
	if m.BlockSize != DefaultBlockSize || len(m.Items) != len(sizes) {
		t.Fatalf("piece size %d, %d items", m.BlockSize, len(m.Items))
	}
	for i, n := range sizes {
		if mi := m.Items[i]; mi.ID != i || mi.Bytes != int64(n) {
			t.Fatalf("item %d: id %d, %d bytes, want %d", i, mi.ID, mi.Bytes, n)
		}
	}
	data := MarshalManifest(m)
	back, err := UnmarshalManifest(data, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(MarshalManifest(back), data) {
		t.Fatalf("manifest changed in its CBOR form")
	}
}
