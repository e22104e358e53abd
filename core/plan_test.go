package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"
)

// countingAllocator records how many bytes a decode asked for.
type countingAllocator struct{ calls, bytes atomic.Int64 }

func (c *countingAllocator) alloc(_ DType, _ []int, _ Order, n int64) ([]byte, error) {
	c.calls.Add(1)
	c.bytes.Add(n)
	return make([]byte, n), nil
}

// hugeRefMessage holds one ref node declaring shape [2^30, 2^30] float32
// (2^62 bytes, the largest the format allows).
func hugeRefMessage(t testing.TB) []byte {
	// ref node [0, 0, "float32", [2^30, 2^30], 0]
	node := "da56430002 85 00 00 67666c6f61743332 82 1a40000000 1a40000000 00"
	return refMessage(t, node, descHex("s", 16, 32, 1, 1<<62))
}

// TestRefLimitsBeforeAllocation: a ref node's declared shape counts
// against MaxArrayBytes on every path (pass-through, plan, decode,
// resolve), before anything is allocated.
func TestRefLimitsBeforeAllocation(t *testing.T) {
	msg := hugeRefMessage(t)
	var alloc countingAllocator
	f := &TableFetcher{}
	modes := map[string]DecOptions{
		"pass-through": {MaxArrayBytes: 1000, PassThrough: true},
		"decode":       {MaxArrayBytes: 1000, Fetcher: f, Allocator: alloc.alloc},
		"default":      {Fetcher: f, Allocator: alloc.alloc}, // 64 GiB
	}
	for name, o := range modes {
		m, err := o.DecMode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Decode(msg); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: Decode = %v, want KindLimit", name, err)
		}
		if _, err := m.Plan(msg); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: Plan = %v, want KindLimit", name, err)
		}
	}
	// A lazy ref that came through a wide relay still meets the
	// receiver's limits when resolved.
	l := &LazyRef{Batch: BatchRef{Source: "s", Items: 1}, DType: DTypeFloat32, Shape: []int{1 << 30, 1 << 30}}
	m, _ := DecOptions{Fetcher: f, Allocator: alloc.alloc, MaxArrayBytes: 1000}.DecMode()
	if _, err := m.Resolve(context.Background(), l); !errors.Is(err, ErrLimit) {
		t.Errorf("DecMode.Resolve = %v, want KindLimit", err)
	}
	if _, err := l.Resolve(context.Background(), f); !errors.Is(err, ErrLimit) {
		t.Errorf("LazyRef.Resolve = %v, want KindLimit (default 64 GiB)", err)
	}
	if n := alloc.calls.Load(); n != 0 {
		t.Errorf("%d allocations (%d bytes) before the limit error", n, alloc.bytes.Load())
	}
}

// TestShapeOverflowAnyOrder: wire-format §6.3's overflow rule gives the
// same answer whatever the order of the dimensions, inline and by ref.
func TestShapeOverflowAnyOrder(t *testing.T) {
	cases := []struct {
		shape []string // CBOR uint heads
		ok    bool
	}{
		{[]string{"00", "1b4000000000000000"}, false}, // [0, 2^62] float64: 2^65 bytes if not empty
		{[]string{"1b4000000000000000", "00"}, false},
		{[]string{"00", "1b0800000000000000"}, true}, // [0, 2^59]: 2^62, allowed, and empty
		{[]string{"1b0800000000000000", "00"}, true},
	}
	for _, c := range cases {
		dims := fmt.Sprintf("%x%s", 0x80+len(c.shape), c.shape[0]+c.shape[1])
		// inline: tag 40 [shape, tag 86 (float64le) h'']
		inline := envelopeHex(t, "d828 82"+dims+"d856 40")
		_, err := Unmarshal(inline)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrMismatch)) {
			t.Errorf("inline %v: %v, want ok=%v (else KindMismatch)", c.shape, err, c.ok)
		}
		// by reference: [0, 0, "float64", shape, 0], pass-through
		node := "da56430002 85 00 00 67666c6f61743634" + dims + "00"
		pt, _ := DecOptions{PassThrough: true}.DecMode()
		_, err = pt.Decode(refMessage(t, node, descHex("s", 16, 32, 1, 0)))
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrMismatch)) {
			t.Errorf("ref %v: %v, want ok=%v (else KindMismatch)", c.shape, err, c.ok)
		}
	}
	for _, shape := range [][]int{{0, 1 << 62}, {1 << 62, 0}} {
		if _, err := NewArray(DTypeFloat64, shape, RowMajor, nil); !errors.Is(err, ErrMismatch) {
			t.Errorf("NewArray %v: %v, want KindMismatch", shape, err)
		}
	}
}

// TestPlan: a plan names every array, inline and referenced, in message
// order, allocates nothing, and places as Decode does.
func TestPlan(t *testing.T) {
	src := newNode(t, "src", nil)
	big := f32Array(t, 1<<18, 1)
	small := mustArray(t, DTypeInt16, []int{2, 3}, ColumnMajor, seq(12))
	msg, tx := src.send(t, map[string]any{"a": small, "b": []any{big, big}, "c": int64(7)}, PublishOptions{Receivers: 1})
	m, _ := DecOptions{}.DecMode()
	p, err := m.Plan(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Slots) != 2 || len(p.Batches) != 1 {
		t.Fatalf("plan has %d slots, %d batches; want 2, 1", len(p.Slots), len(p.Batches))
	}
	a, b := p.Slots[0], p.Slots[1]
	if a.Ref() || !slices.Equal(a.Shape, []int{2, 3}) || a.Order != ColumnMajor || a.Bytes != 12 {
		t.Errorf("slot 0 = %+v, want the inline int16 array", a)
	}
	if a.Offset < 0 || !bytes.Equal(msg[a.Offset:a.Offset+a.Bytes], small.Data) {
		t.Errorf("slot 0 offset %d does not point at its payload", a.Offset)
	}
	if !b.Ref() || b.Batch != 0 || b.Bytes != int64(len(big.Data)) || b.Offset != -1 {
		t.Errorf("slot 1 = %+v, want the referenced array", b)
	}
	body := p.Body.(map[string]any)
	if body["a"] != SlotIndex(0) || body["b"].([]any)[0] != SlotIndex(1) || body["b"].([]any)[1] != SlotIndex(1) {
		t.Errorf("body = %v, want slots 0, 1, 1", body)
	}
	// Place them in caller memory: copy the inline one, download the other.
	dst0, dst1 := make([]byte, a.Bytes), make([]byte, b.Bytes)
	if err := p.Slots[0].CopyTo(dst0); err != nil {
		t.Fatal(err)
	}
	if err := p.Slots[1].CopyTo(dst1); !errors.Is(err, ErrInvalid) {
		t.Errorf("CopyTo of a ref slot = %v, want KindInvalid", err)
	}
	d, err := p.Download(1, dst1)
	if err != nil {
		t.Fatal(err)
	}
	if err := FetchAll(context.Background(), &TableFetcher{Sources: map[string]*Table{"src": src.table}, Receiver: "r"}, []Download{d}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst0, small.Data) || !bytes.Equal(dst1, big.Data) {
		t.Error("placed bytes differ from the source's")
	}
	if out, _ := tx.Outcome(); out.State != StateCompleted {
		t.Errorf("transaction %v, want completed", out.State)
	}
}

// TestPlanOffsets: every inline slot of every golden message says where
// its payload stands in the message, so a host can place it from its own
// copy of the message.
func TestPlanOffsets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.cbor"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	m, _ := DecOptions{PassThrough: true}.DecMode()
	inline := 0
	for _, f := range files {
		msg, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.Plan(msg)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, s := range p.Slots {
			end := s.Offset + int64(len(s.Inline))
			if s.Offset < 0 || end > int64(len(msg)) || unsafe.SliceData(msg[s.Offset:end]) != unsafe.SliceData(s.Inline) && len(s.Inline) > 0 {
				t.Errorf("%s: slot %d: offset %d is not where its %d-byte payload stands", f, i, s.Offset, len(s.Inline))
			}
			inline++
		}
	}
	if inline < 10 {
		t.Fatalf("only %d inline arrays in the golden files", inline)
	}
}

// TestSkeletonSlots: slots appear only in skeletons. A message carrying
// the slot tag is refused; a SlotIndex outside a skeleton cannot be
// encoded; a skeleton round trip keeps slots and lazy refs
// (skeleton_test.go has the rest of the skeleton's tests).
func TestSkeletonSlots(t *testing.T) {
	if _, err := Unmarshal(envelopeHex(t, "da56430003 00")); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("slot tag in a message: %v, want KindUnknownTag", err)
	}
	if _, err := Marshal([]any{SlotIndex(0)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Marshal of a SlotIndex: %v, want KindInvalid", err)
	}
	enc, _ := EncOptions{Slots: true}.EncMode()
	dec, _ := DecOptions{Slots: true}.DecMode()
	lazy := &LazyRef{Batch: BatchRef{Source: "s", Items: 1, Bytes: 8}, DType: DTypeUint8, Shape: []int{8}}
	skel, err := enc.Marshal(map[string]any{"w": SlotIndex(3), "l": lazy})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dec.Decode(skel)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(map[string]any)
	if got["w"] != SlotIndex(3) {
		t.Errorf("slot = %v, want SlotIndex(3)", got["w"])
	}
	if l, ok := got["l"].(*LazyRef); !ok || l.Item != 0 || l.Batch.Source != "s" {
		t.Errorf("lazy ref = %v", got["l"])
	}
	// Skeletons carry arrays as slots or with their own tag, never in the
	// RFC 8746 form of a message.
	if _, err := dec.Decode([]byte{0xd8, 0x28, 0x82, 0x81, 0x01, 0xd8, 0x40, 0x41, 0x07}); !errors.Is(err, ErrProtocol) {
		t.Errorf("RFC 8746 array in a skeleton: %v, want KindProtocol", err)
	}
}

// failingFetcher fails batches from sources named in fail with their
// kind, and blocks others until cancelled.
type failingFetcher struct {
	fail  map[string]error
	calls atomic.Int64
}

func (f *failingFetcher) Fetch(ctx context.Context, b BatchRef, items []FetchItem) error {
	f.calls.Add(1)
	if err, ok := f.fail[b.Source]; ok {
		return err
	}
	<-ctx.Done()
	return errorf(KindAborted, "cancelled")
}

// TestFetchAll: one Fetch per batch, batches in parallel; the error that
// caused the others to be cancelled wins; a foreign error gets a kind.
func TestFetchAll(t *testing.T) {
	b1 := BatchRef{Source: "a", Items: 2}
	b1.RefID[0] = 1
	b2 := BatchRef{Source: "b", Items: 1}
	b2.RefID[0] = 2
	dl := func(b BatchRef, item int, n int) Download {
		return Download{Batch: b, Item: FetchItem{ID: item, DType: DTypeUint8, Shape: []int{n}, Dst: make([]byte, n)}}
	}
	f := &failingFetcher{fail: map[string]error{"b": errorf(KindChecksum, "bad block")}}
	err := FetchAll(context.Background(), f, []Download{dl(b1, 0, 4), dl(b1, 1, 4), dl(b2, 0, 4), dl(b1, 0, 4)})
	if !errors.Is(err, ErrChecksum) {
		t.Errorf("FetchAll = %v, want the checksum error, not the abort it caused", err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d Fetch calls, want one per batch (2)", n)
	}
	f = &failingFetcher{fail: map[string]error{"a": errors.New("socket gone")}}
	if err := FetchAll(context.Background(), f, []Download{dl(b1, 0, 4)}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("foreign error: %v, want KindUnavailable", err)
	}
	twin := b1
	twin.Source = "elsewhere"
	if err := FetchAll(context.Background(), f, []Download{dl(b1, 0, 4), dl(twin, 1, 4)}); !errors.Is(err, ErrProtocol) {
		t.Errorf("two descriptors with one ref id: %v, want KindProtocol", err)
	}
	if err := FetchAll(context.Background(), nil, []Download{dl(b1, 0, 4)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no fetcher: %v, want KindInvalid", err)
	}
}

// TestFetchAllDedup: an item named twice is downloaded once and copied.
func TestFetchAllDedup(t *testing.T) {
	src := newNode(t, "src", nil)
	w := f32Array(t, 1024, 2)
	msg, _ := src.send(t, w, PublishOptions{})
	pt, _ := DecOptions{PassThrough: true}.DecMode()
	v, err := pt.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	l := v.(*LazyRef)
	m, _ := DecOptions{Fetcher: &TableFetcher{Sources: map[string]*Table{"src": src.table}, Receiver: "r"}}.DecMode()
	arrays, err := m.Resolve(context.Background(), l, l)
	if err != nil {
		t.Fatal(err)
	}
	if arrays[0] != arrays[1] || !bytes.Equal(arrays[0].Data, w.Data) {
		t.Error("a lazy ref resolved twice gave two arrays or the wrong bytes")
	}
	if st := src.table.Stats(); st.BytesServed != int64(len(w.Data)) {
		t.Errorf("served %d bytes, want %d (one download)", st.BytesServed, len(w.Data))
	}
}

// TestRefNodesRepeated: a message may name an item of a batch more than
// once, in any order of items: every ref node of one item is one value
// (one *LazyRef in pass-through, one slot in a plan), and one that
// describes it differently is refused at its own offset, whether the
// items came in the order an encoder numbers them or not.
func TestRefNodesRepeated(t *testing.T) {
	a := BatchRef{Source: "a", Items: 8, Bytes: 64}
	b := BatchRef{Source: "b", Items: 3, Bytes: 3}
	a.RefID[0], b.RefID[0] = 1, 2
	ref := func(batch BatchRef, item int) *LazyRef {
		return &LazyRef{Batch: batch, Item: item, DType: DTypeInt8, Shape: []int{item + 1}}
	}
	// items 0 1 0 of b in order; 2 0 1 0 2 5 5 3 of a out of order.
	order := []struct {
		batch BatchRef
		item  int
	}{{a, 2}, {b, 0}, {a, 0}, {b, 1}, {a, 1}, {a, 0}, {b, 0}, {a, 2}, {a, 5}, {a, 5}, {a, 3}}
	list := make([]any, len(order))
	for i, o := range order {
		list[i] = ref(o.batch, o.item)
	}
	msg, err := Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	v, err := passThrough.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	got := v.([]any)
	p, err := MustMode(DecOptions{}.DecMode()).Plan(msg)
	if err != nil {
		t.Fatal(err)
	}
	slots := p.Body.([]any)
	if len(p.Slots) != 7 {
		t.Fatalf("%d slots, want 7 (one per item)", len(p.Slots))
	}
	for i := range order {
		l := got[i].(*LazyRef)
		if l.Batch != order[i].batch || l.Item != order[i].item || !slices.Equal(l.Shape, []int{order[i].item + 1}) {
			t.Fatalf("ref %d: %v, want item %d of %s", i, l, order[i].item, order[i].batch.Source)
		}
		s := p.Slots[slots[i].(SlotIndex)]
		if p.Batches[s.Batch] != order[i].batch || s.Item != order[i].item {
			t.Fatalf("ref %d: slot of item %d of %s", i, s.Item, p.Batches[s.Batch].Source)
		}
		for j := range i {
			same := order[i] == order[j]
			if (got[i] == got[j]) != same || (slots[i] == slots[j]) != same {
				t.Fatalf("refs %d and %d: same item %v, same value %v, same slot %v", j, i, same, got[i] == got[j], slots[i] == slots[j])
			}
		}
	}
	// The same item described differently, at every position: its
	// ref node's offset.
	for i := range order {
		bad := slices.Clone(list)
		l := *ref(order[i].batch, order[i].item)
		l.Shape = []int{9, 9}
		bad = append(bad, &l)
		msg, err := Marshal(bad)
		if err != nil {
			t.Fatal(err)
		}
		bi := map[BatchRef]string{a: "00", b: "01"}[order[i].batch] // a comes first
		node := fmt.Sprintf("da56430002 85 %s %02x 64696e7438 820909 00", bi, order[i].item)
		off := int64(bytes.Index(msg, unhex(t, node)))
		for _, m := range []*DecMode{passThrough, MustMode(DecOptions{}.DecMode())} {
			_, err := m.Plan(msg)
			if e, ok := errors.AsType[*Error](err); !ok || e.Kind != KindMismatch || e.Offset != off {
				t.Fatalf("item %d of %s described twice: %v, want KindMismatch at %d", order[i].item, order[i].batch.Source, err, off)
			}
		}
	}
}

// TestFastPaths: the scan and the walk take the commonest forms of a ref
// node and of a small RFC 8746 array at once (scanner.refNode,
// refFieldsFast, scanner.ndarray, ndarrayFast); for ref nodes and arrays
// of every form, cut short and with any bit flipped, every way to decode
// gives the answer of the general path: the same value, plan or
// skeleton, or an error of the same kind at the same offset.
func TestFastPaths(t *testing.T) {
	var b0, b1 BatchRef
	b0.Source, b0.Items, b0.Bytes, b0.RefID[0] = "a", 1<<31-1, 1<<40, 1
	b1.Source, b1.Items, b1.Bytes, b1.RefID[0], b1.Holder = "b", 300, 300, 2, "h"
	var messages [][]byte
	for _, refs := range [][]*LazyRef{
		{{Batch: b0, Item: 0, DType: DTypeInt8, Shape: []int{}}, {Batch: b1, Item: 23, DType: DTypeFloat32, Shape: []int{2, 3}, Order: ColumnMajor}},
		{{Batch: b0, Item: 24, DType: DTypeFloat8E4M3FN, Shape: []int{1 << 33}}, {Batch: b0, Item: 24, DType: DTypeFloat8E4M3FN, Shape: []int{1 << 33}}},
		{{Batch: b1, Item: 299, DType: DTypeBFloat16, Shape: []int{255, 256, 65536}}, {Batch: b0, Item: 1<<31 - 2, DType: DTypeComplex128, Shape: make([]int, 23)}},
		{{Batch: b0, Item: 65536, DType: DTypeBool, Shape: make([]int, 24)}, {Batch: b0, Item: 5, DType: DTypeUint64, Shape: []int{7}}},
		{{Batch: b0, Item: 65537, DType: DTypeInt16, Shape: []int{3}}, {Batch: b1, Item: 255, DType: DTypeUint16, Shape: []int{24, 1}}},
		// The items of a batch in order, of one dtype: the skeleton's
		// lazy refs after the first (decoder.skelRef), with dimensions
		// of one to five bytes, none and zero.
		{{Batch: b1, Item: 0, DType: DTypeFloat32, Shape: []int{}}, {Batch: b1, Item: 1, DType: DTypeFloat32, Shape: []int{2, 3}},
			{Batch: b1, Item: 2, DType: DTypeFloat32, Shape: []int{0, 5}, Order: ColumnMajor}, {Batch: b1, Item: 3, DType: DTypeFloat32, Shape: []int{300, 24}},
			{Batch: b1, Item: 4, DType: DTypeFloat32, Shape: []int{70000}}, {Batch: b1, Item: 5, DType: DTypeFloat32, Shape: []int{1 << 31}},
			{Batch: b1, Item: 6, DType: DTypeFloat32, Shape: []int{1 << 30, 1 << 30}}},
	} {
		list := make([]any, len(refs))
		for i, l := range refs {
			list[i] = l
		}
		msg, err := Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		messages = append(messages, msg)
	}
	// Small arrays: encoded, and written by hand (big-endian, a byte
	// string of a long head, a tag that holds no typed array, a shape of
	// 24 dimensions).
	arrays := []any{
		mustArray(t, DTypeInt8, []int{}, RowMajor, []byte{7}),
		mustArray(t, DTypeFloat32, []int{}, RowMajor, []byte{0, 0, 0xc0, 0x3f}),
		mustArray(t, DTypeUint16, []int{3}, RowMajor, []byte{1, 0, 2, 0, 3, 0}),
		mustArray(t, DTypeFloat32, []int{2, 3}, ColumnMajor, make([]byte, 24)),
		mustArray(t, DTypeBool, []int{2}, RowMajor, []byte{1, 0}),
		mustArray(t, DTypeBFloat16, []int{1, 1}, RowMajor, []byte{1, 2}),
		mustArray(t, DTypeComplex64, []int{}, RowMajor, make([]byte, 8)),
		mustArray(t, DTypeFloat8E5M2, []int{0, 5}, RowMajor, nil),
	}
	msg, err := Marshal(arrays)
	if err != nil {
		t.Fatal(err)
	}
	messages = append(messages, msg,
		envelopeHex(t, "84 d828 82 81 02 d841 44 00010002 d90410 82 82 01 02 d848 5802 0102 d828 82 80 d863 41 07 d828 82 98 18"+strings.Repeat("01", 24)+" d848 41 07"))
	// Each message and its skeleton, cut short at every byte and with
	// every bit flipped in turn.
	mangled := func(msg []byte) (out [][]byte) {
		for n := range len(msg) + 1 {
			out = append(out, msg[:n])
		}
		for i := range len(msg) * 8 {
			flip := slices.Clone(msg)
			flip[i/8] ^= 1 << (i % 8)
			out = append(out, flip)
		}
		return out
	}
	var inputs, skeletons [][]byte
	for _, msg := range messages {
		inputs = append(inputs, mangled(msg)...)
		if p, err := passThrough.Skeleton(msg, 0, 0, nil); err == nil { // the hand-written one fails
			skeletons = append(skeletons, mangled(p.Skeleton.Bytes())...)
		}
	}
	plain := MustMode(DecOptions{}.DecMode())
	narrow := MustMode(DecOptions{PassThrough: true, MaxElements: 4, MaxByteLen: 4}.DecMode())
	shallow := MustMode(DecOptions{PassThrough: true, MaxDepth: 3}.DecMode()) // a shape one level too deep
	scant := MustMode(DecOptions{PassThrough: true, MaxArrayBytes: 1000}.DecMode())
	ways := map[string]func([]byte) (string, error){
		"pass-through": func(b []byte) (string, error) {
			v, err := passThrough.Decode(b)
			if err != nil {
				return "", err
			}
			out, err := Marshal(v)
			return fmt.Sprintf("%x", out), err
		},
		"plan": func(b []byte) (string, error) {
			p, err := plain.Plan(b)
			if err != nil {
				return "", err
			}
			return fmt.Sprint(p.Body, p.Slots, p.Batches), nil
		},
		"skeleton, pass-through": func(b []byte) (string, error) {
			p, err := passThrough.Skeleton(b, 0, 0, nil)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%x %v", p.Skeleton.Bytes(), p.Slots), nil
		},
		"skeleton": func(b []byte) (string, error) {
			p, err := plain.Skeleton(b, 0, 0, nil)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%x %v %v", p.Skeleton.Bytes(), p.Slots, p.Batches), nil
		},
		"narrow limits": func(b []byte) (string, error) {
			p, err := narrow.Skeleton(b, 0, 0, nil)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%x", p.Skeleton.Bytes()), nil
		},
		"read skeleton": func(b []byte) (string, error) {
			v, err := skelDec.Decode(b)
			if err != nil {
				return "", err
			}
			out, err := Marshal(v)
			return fmt.Sprintf("%x", out), err
		},
		"scant MaxArrayBytes": func(b []byte) (string, error) {
			p, err := scant.Skeleton(b, 0, 0, nil)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%x", p.Skeleton.Bytes()), nil
		},
		"shallow": func(b []byte) (string, error) {
			p, err := shallow.Skeleton(b, 0, 0, nil)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%x", p.Skeleton.Bytes()), nil
		},
	}
	answer := func(way func([]byte) (string, error), b []byte) string {
		s, err := way(b)
		if e, ok := errors.AsType[*Error](err); ok {
			return fmt.Sprintf("error %v at %d", e.Kind, e.Offset)
		} else if err != nil {
			return "error " + err.Error()
		}
		return s
	}
	t.Cleanup(func() { generalOnly = false })
	succeeded := 0
	for name, way := range ways {
		in := inputs
		if name == "read skeleton" {
			in = skeletons
		}
		for _, b := range in {
			generalOnly = false
			fast := answer(way, b)
			generalOnly = true
			general := answer(way, b)
			if fast != general {
				t.Fatalf("%s of %x:\nfast paths   %s\ngeneral path %s", name, b, fast, general)
			}
			if !strings.HasPrefix(fast, "error") {
				succeeded++
			}
		}
	}
	if succeeded < len(inputs) {
		t.Fatalf("only %d of %d decodes succeeded: the inputs do not reach the fast paths", succeeded, len(ways)*len(inputs))
	}
}
