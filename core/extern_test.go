package core

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/viacodec/viacodec/internal/fakeclock"
)

// TestExternEncode: an Extern goes by reference whatever its size, once
// per *Extern, beside arrays of the caller's memory; its item has no bytes
// and points back to it; the message describes it as any ref node.
func TestExternEncode(t *testing.T) {
	src := newNode(t, "server", nil)
	x := &Extern{DType: DTypeFloat32, Shape: []int{3, 4}, Order: ColumnMajor, Handle: 7}
	twin := &Extern{DType: DTypeFloat32, Shape: []int{3, 4}, Order: ColumnMajor, Handle: 8}
	tiny := &Extern{DType: DTypeInt8, Shape: []int{2}, Handle: 9} // below RefThreshold: by reference all the same
	w := f32Array(t, 100, 0)
	msg, err := src.enc.Encode(map[string]any{"x": x, "again": x, "twin": twin, "tiny": tiny, "w": w})
	if err != nil {
		t.Fatal(err)
	}
	b := msg.Batch()
	if b == nil || len(b.Items) != 4 || b.Ref.Items != 4 || b.Ref.Bytes != 48+48+2+400 {
		t.Fatalf("batch %v with %d items", b.Ref, len(b.Items))
	}
	handles := map[int64]int{}
	for i, it := range b.Items {
		if it.ID != i || it.Size() != int64(map[bool]int{true: int(sizeOf(it.Extern)), false: len(it.Data)}[it.Extern != nil]) {
			t.Fatalf("item %d: %+v", i, it)
		}
		if it.Extern != nil {
			if it.Data != nil || it.DType != it.Extern.DType || !slices.Equal(it.Shape, it.Extern.Shape) || it.Order != it.Extern.Order {
				t.Fatalf("extern item %d: %+v", i, it)
			}
			handles[it.Extern.Handle]++
		}
	}
	if handles[7] != 1 || handles[8] != 1 || handles[9] != 1 {
		t.Fatalf("extern items by handle: %v (one per *Extern)", handles)
	}
	v, err := passThrough.Decode(msg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	l := m["x"].(*LazyRef)
	if m["again"] != l || m["twin"] == l || l.DType != DTypeFloat32 || !slices.Equal(l.Shape, []int{3, 4}) || l.Order != ColumnMajor || l.Batch != b.Ref {
		t.Fatalf("ref nodes: %v %v %v", m["x"], m["again"], m["twin"])
	}

	inline, _ := EncOptions{}.EncMode()
	for _, c := range []struct {
		name string
		mode *EncMode
		v    any
		kind Kind
	}{
		{"inline", inline, []any{x}, KindInvalid},
		{"nil", src.enc, []any{(*Extern)(nil)}, KindInvalid},
		{"dtype", src.enc, []any{&Extern{DType: DTypeInvalid, Shape: []int{1}}}, KindMismatch},
		{"order", src.enc, []any{&Extern{DType: DTypeInt8, Order: 2}}, KindMismatch},
		{"negative dimension", src.enc, []any{&Extern{DType: DTypeInt8, Shape: []int{-1}}}, KindMismatch},
		{"overflow", src.enc, []any{&Extern{DType: DTypeFloat64, Shape: []int{1 << 40, 1 << 40}}}, KindMismatch},
	} {
		if _, err := c.mode.Encode(c.v); KindOf(err) != c.kind {
			t.Errorf("%s: %v, want kind %v", c.name, err, c.kind)
		}
	}
}

func sizeOf(x *Extern) int64 {
	n, _ := x.Size()
	return n
}

// TestGrantsHeldElsewhere: a batch of items held elsewhere is served by
// their holder: Manifest and Serve refuse its items and record nothing;
// GrantManifest and GrantServe check and record the requests as Manifest
// and Serve do, and hold nothing back; a granted nonce confirms.
func TestGrantsHeldElsewhere(t *testing.T) {
	clock := fakeclock.New(fakeclock.Start)
	src := newNode(t, "server", clock)
	x := &Extern{DType: DTypeFloat32, Shape: []int{1000}}
	w := f32Array(t, 100, 0)
	msg, err := src.enc.Encode([]any{x, w})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := src.table.Publish(msg.Batch(), PublishOptions{Receivers: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ref := tx.Ref()
	tok := ref.Token[:]
	if _, _, err := src.table.Manifest(ref.RefID, tok, "a"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Manifest of a batch held elsewhere: %v", err)
	}
	if _, _, err := src.table.Serve(ref.RefID, tok, "a", 0, 0, 4); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Serve of an item held elsewhere: %v", err)
	}
	if _, rs := tx.Status(); len(rs) != 0 {
		t.Fatalf("refused requests recorded receivers %+v", rs)
	}
	// An item of the caller's memory in the same batch is served here.
	data, release, err := src.table.Serve(ref.RefID, tok, "a", 1, 0, 400)
	if err != nil || len(data) != 400 {
		t.Fatalf("Serve of an item in memory: %v", err)
	}
	release()

	clock.Advance(50 * time.Second)
	nonce, err := src.table.GrantManifest(ref.RefID, tok, "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		item    int
		off, n  int64
		kind    Kind
		granted bool
	}{
		{"all", 0, 0, 4000, KindNone, true},
		{"a range", 0, 1000, 24, KindNone, true},
		{"past the end", 0, 3998, 4, KindInvalid, false},
		{"negative", 0, -1, 4, KindInvalid, false},
		{"no item", 2, 0, 4, KindUnknownRef, false},
	} {
		if err := src.table.GrantServe(ref.RefID, tok, "a", "", c.item, c.off, c.n); KindOf(err) != c.kind {
			t.Errorf("GrantServe %s: %v, want kind %v", c.name, err, c.kind)
		}
	}
	if err := src.table.GrantServe(ref.RefID, tok[:8], "a", "", 0, 0, 4); !errors.Is(err, ErrAuth) {
		t.Errorf("GrantServe with a short token: %v", err)
	}
	if _, err := src.table.GrantManifest(ref.RefID, tok, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("GrantManifest without receiver: %v", err)
	}
	_, rs := tx.Status()
	if len(rs) != 1 || rs[0].Bytes != 400+4000+24 || !rs[0].LastSeen.Equal(clock.Now()) {
		t.Fatalf("receivers %+v", rs)
	}
	if s := src.table.Stats(); s.BytesServed != 4424 || s.Serves != 3 {
		t.Fatalf("stats %+v", s)
	}
	// The grants were activity: the transaction is alive 50 s later.
	if n := src.table.Sweep(clock.Advance(50 * time.Second)); n != 0 {
		t.Fatal("granted requests were no activity")
	}
	if err := src.table.Confirm(ref.RefID, tok, "a", nonce); err != nil {
		t.Fatal(err)
	}
	out, done := tx.Outcome() // nothing held back: Done at once
	if !done || out.State != StateCompleted || !slices.Equal(out.Confirmed(), []string{"a"}) {
		t.Fatalf("outcome %+v, done %v", out, done)
	}
	if _, err := src.table.GrantManifest(ref.RefID, tok, "b"); !errors.Is(err, ErrExpired) {
		t.Fatalf("GrantManifest after the end: %v", err)
	}
}

// TestByRefNilArray: a nil *Array is an error by reference as inline,
// not a panic.
func TestByRefNilArray(t *testing.T) {
	src := newNode(t, "server", nil)
	if _, err := src.enc.Encode([]any{(*Array)(nil)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil *Array by reference: %v", err)
	}
}
