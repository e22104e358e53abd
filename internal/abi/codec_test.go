package abi

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

// TestEncodeDecodeSlots sends a value through Encode (skeleton and slots)
// and back through Decode and Fill into fresh memory, and compares both
// ways with core's own encoding.
func TestEncodeDecodeSlots(t *testing.T) {
	w, _ := core.ArrayOf([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	f, _ := core.NewArray(core.DTypeInt16, []int{2, 2}, core.ColumnMajor, []byte{1, 0, 2, 0, 3, 0, 4, 0})
	blob := bytes.Repeat([]byte{7}, 100)
	want, err := core.Marshal(map[string]any{"w": w, "f": f, "meta": []any{"x", blob, core.Object{Name: "t", Data: w}}})
	if err != nil {
		t.Fatal(err)
	}
	skel := abitest.Skeleton(t, map[string]any{"w": core.SlotIndex(0), "f": core.SlotIndex(1),
		"meta": []any{"x", core.SlotIndex(2), core.Object{Name: "t", Data: core.SlotIndex(0)}}})
	m, err := Encode(skel, []Slot{SlotOf(w), SlotOf(f), {Data: blob, DType: SlotBytes}}, abitest.PlainMode(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("encode:\n got %x\nwant %x", got, want)
	}

	d, err := Decode(want, DecOptions{BytesSlotMin: 64}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	// f, w, the blob, w inside the object: in the order of the message
	// (keys sorted shortest first), byte strings among the arrays.
	wantSpecs := []SlotSpec{
		{DType: int32(core.DTypeInt16), Order: int32(core.ColumnMajor), Shape: []int{2, 2}, Bytes: 8},
		{DType: int32(core.DTypeFloat32), Order: int32(core.RowMajor), Shape: []int{2, 3}, Bytes: 24},
		{DType: SlotBytes, Bytes: 100},
		{DType: int32(core.DTypeFloat32), Order: int32(core.RowMajor), Shape: []int{2, 3}, Bytes: 24},
	}
	if len(d.Specs) != len(wantSpecs) {
		t.Fatalf("%d slots, want %d: %+v", len(d.Specs), len(wantSpecs), d.Specs)
	}
	for i, s := range d.Specs {
		ws := wantSpecs[i]
		if s.DType != ws.DType || s.Order != ws.Order || !slices.Equal(s.Shape, ws.Shape) || s.Bytes != ws.Bytes || s.Ref {
			t.Fatalf("slot %d: %+v, want %+v", i, s, ws)
		}
	}
	if d.host != 0 {
		t.Fatalf("host %d, want 0", d.host)
	}
	dsts := Destinations(d.Specs)
	if err := Fill(d, dsts); err != nil {
		t.Fatal(err)
	}
	// The skeleton and the filled slots make the message again.
	back, err := Encode(d.Skeleton.Bytes(), dsts, abitest.PlainMode(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("decode and encode again:\n got %x\nwant %x", got, want)
	}
}

// TestFillSwapsBigEndian: a big-endian array lands little-endian in its
// destination, as every binding reads memory.
func TestFillSwapsBigEndian(t *testing.T) {
	// 0x56430000([1, 40([[2], 74(h'0000000100000002')]), []]): the int32
	// array [1, 2] as a big-endian typed array (RFC 8746 tag 74).
	msg := []byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01,
		0xd8, 0x28, 0x82, 0x81, 0x02, 0xd8, 0x4a, 0x48, 0, 0, 0, 1, 0, 0, 0, 2, 0x80}
	d, err := Decode(msg, DecOptions{}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Specs) != 1 || d.Specs[0].DType != int32(core.DTypeInt32) || d.Specs[0].Bytes != 8 {
		t.Fatalf("specs %+v", d.Specs)
	}
	dsts := Destinations(d.Specs)
	if err := Fill(d, dsts); err != nil {
		t.Fatal(err)
	}
	if want := []byte{1, 0, 0, 0, 2, 0, 0, 0}; !bytes.Equal(dsts[0].Data, want) {
		t.Fatalf("filled %x, want %x", dsts[0].Data, want)
	}
}

func TestSlotErrors(t *testing.T) {
	w, _ := core.ArrayOf([]int{4}, []float32{1, 2, 3, 4})
	good := SlotOf(w)
	with := func(f func(*Slot)) []Slot {
		s := good
		f(&s)
		return []Slot{s}
	}
	slot0 := abitest.Skeleton(t, []any{core.SlotIndex(0)})
	// slot0 ends in the slot tag's argument, 0: these put another item there.
	tagged := func(arg ...byte) []byte {
		return append(slot0[:len(slot0)-1:len(slot0)-1], arg...)
	}
	inline, err := core.Marshal([]any{w})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		skel  []byte
		slots []Slot
		kind  core.Kind
	}{
		{"index out of range", abitest.Skeleton(t, []any{core.SlotIndex(1)}), []Slot{good}, core.KindInvalid},
		{"no slots", slot0, nil, core.KindInvalid},
		// A skeleton's faults are the caller's value's: invalid arguments.
		{"negative index", tagged(0x20), []Slot{good}, core.KindInvalid},
		{"index not an int", tagged(0x61, '0'), []Slot{good}, core.KindInvalid},
		{"index beyond int32", tagged(0x1b, 0, 0, 0, 1, 0, 0, 0, 0), []Slot{good}, core.KindInvalid},
		{"bad dtype", slot0, with(func(s *Slot) { s.DType = 99 }), core.KindMismatch},
		{"negative dtype", slot0, with(func(s *Slot) { s.DType = -1 }), core.KindMismatch},
		{"bad order", slot0, with(func(s *Slot) { s.Order = 2 }), core.KindMismatch},
		{"data shorter than the shape", slot0, with(func(s *Slot) { s.Data = s.Data[:12] }), core.KindMismatch},
		{"no data", slot0, with(func(s *Slot) { s.Data = nil }), core.KindMismatch},
		{"negative dim", slot0, with(func(s *Slot) { s.Shape = []int64{-4} }), core.KindMismatch},
		{"too many dims", slot0, with(func(s *Slot) { s.Shape = make([]int64, core.MaxDims+1) }), core.KindInvalid},
		{"bytes slot with dims", slot0, with(func(s *Slot) { s.DType = SlotBytes }), core.KindInvalid},
		{"a message as the skeleton", inline, []Slot{good}, core.KindInvalid},
		{"RFC 8746 array in the skeleton", inline[7 : len(inline)-1], []Slot{good}, core.KindInvalid},
		{"truncated", slot0[:5], []Slot{good}, core.KindInvalid},
		{"nested beyond any MaxDepth", append(bytes.Repeat([]byte{0x81}, 2*4096+2), 0), nil, core.KindLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Encode(c.skel, c.slots, abitest.PlainMode(t))
			abitest.WantKind(t, "encode", err, c.kind)
		})
	}
	// A bad slot fails the call even when the skeleton does not use it.
	_, err = Encode(slot0, []Slot{good, with(func(s *Slot) { s.DType = 99 })[0]}, abitest.PlainMode(t))
	abitest.WantKind(t, "unused bad slot", err, core.KindMismatch)
	// The skeleton's own depth is free; the message's is MaxDepth's.
	deep := any(core.SlotIndex(0))
	for range 10 {
		deep = []any{deep}
	}
	shallow, err := EncOptions{MaxDepth: 5}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Encode(abitest.Skeleton(t, deep), []Slot{good}, shallow)
	abitest.WantKind(t, "deeper than MaxDepth", err, core.KindLimit)
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []EncOptions{{MaxDepth: -1}, {MaxDepth: 1 << 40}} {
		_, err := o.EncMode()
		abitest.WantKind(t, "encode options", err, core.KindInvalid)
	}
	msg, err := core.Marshal(int64(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []DecOptions{
		{MaxDepth: -1}, {MaxDepth: 1 << 40}, {MaxElements: -1}, {MaxElements: maxLimit + 1},
		{MaxByteLen: -1}, {MaxMessageSize: -1}, {MaxArrayBytes: -1}, {BytesSlotMin: -1},
	} {
		_, err := Decode(msg, o, false, 0)
		abitest.WantKind(t, "decode options", err, core.KindInvalid)
	}
	_, err = Decode(msg, DecOptions{MaxMessageSize: int64(len(msg) - 1)}, false, 0)
	abitest.WantKind(t, "MaxMessageSize", err, core.KindLimit)
}

// TestSlotNameIsNotReserved: "viacodec.slot" is a typed object like any
// other; skeletons mark slots with their own tag.
func TestSlotNameIsNotReserved(t *testing.T) {
	obj := core.Object{Name: "viacodec.slot", Data: int64(0)}
	msg, err := core.Marshal([]any{obj})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(msg, DecOptions{}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Specs) != 0 {
		t.Fatalf("%d slots, want none", len(d.Specs))
	}
	dm, err := core.DecOptions{Slots: true}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	v, err := dm.Decode(d.Skeleton.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := v.([]any); !ok || len(l) != 1 || l[0] != any(obj) {
		t.Fatalf("skeleton holds %#v, want the object", v)
	}
	back, err := Encode(d.Skeleton.Bytes(), nil, abitest.PlainMode(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Bytes(), msg) {
		t.Fatalf("encode again:\n got %x\nwant %x", back.Bytes(), msg)
	}
}

// TestSlotTagInMessage: the slot tag stands only in skeletons; a message
// that carries it is refused as an unknown tag.
func TestSlotTagInMessage(t *testing.T) {
	// 0x56430000([1, [0x56430003(0)], []])
	msg := []byte{0xda, 0x56, 0x43, 0, 0, 0x83, 0x01, 0x81, 0xda, 0x56, 0x43, 0, 0x03, 0x00, 0x80}
	_, err := Decode(msg, DecOptions{}, false, 0)
	if !errors.Is(err, core.ErrUnknownTag) {
		t.Fatalf("got %v, want core.ErrUnknownTag", err)
	}
	abitest.WantKind(t, "slot tag in a message", err, core.KindUnknownTag)
	if OffsetOf(err) < 0 {
		t.Fatalf("no offset in %v", err)
	}
	_, err = Decode(msg, DecOptions{PassThrough: true}, true, 0)
	abitest.WantKind(t, "slot tag in a message, pass-through", err, core.KindUnknownTag)
}

func TestFillChecks(t *testing.T) {
	w, _ := core.ArrayOf([]int{2}, []float32{1, 2})
	blob := bytes.Repeat([]byte{9}, 10)
	msg, err := core.Marshal([]any{w, blob})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(msg, DecOptions{BytesSlotMin: 10}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	f32 := int32(core.DTypeFloat32)
	for _, c := range []struct {
		name string
		dsts []Slot
		kind core.Kind
	}{
		{"short", []Slot{{Data: make([]byte, 4), DType: f32}}, core.KindMismatch},
		{"long", []Slot{{Data: make([]byte, 12), DType: f32}}, core.KindMismatch},
		{"other dtype", []Slot{{Data: make([]byte, 8), DType: int32(core.DTypeInt64)}}, core.KindMismatch},
		{"bytes slot as an array", []Slot{{}, {Data: make([]byte, 10), DType: f32}}, core.KindMismatch},
		{"more destinations than slots", []Slot{{Data: make([]byte, 8), DType: f32}, {Data: make([]byte, 10), DType: SlotBytes}, {}}, core.KindInvalid},
	} {
		abitest.WantKind(t, c.name, Fill(d, c.dsts), c.kind)
	}
	// Every destination is checked before anything is copied.
	first := make([]byte, 8)
	err = Fill(d, []Slot{{Data: first, DType: f32}, {Data: make([]byte, 9), DType: SlotBytes}})
	abitest.WantKind(t, "second destination short", err, core.KindMismatch)
	if !bytes.Equal(first, make([]byte, 8)) {
		t.Fatal("the first destination was written before the second was checked")
	}
	// Destinations without data are skipped, and fewer than the slots are fine.
	if err := Fill(d, []Slot{{}, {Data: make([]byte, 10), DType: SlotBytes}}); err != nil {
		t.Fatal(err)
	}
	if err := Fill(d, []Slot{{Data: first, DType: f32}}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, w.Data) {
		t.Fatalf("filled %x, want %x", first, w.Data)
	}
	// May be called again.
	dsts := Destinations(d.Specs)
	if err := Fill(d, dsts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dsts[0].Data, w.Data) || !bytes.Equal(dsts[1].Data, blob) {
		t.Fatalf("filled %x and %x", dsts[0].Data, dsts[1].Data)
	}
}

// TestGoldenSkeletons decodes every golden file into a skeleton and slots
// and encodes it back: byte for byte. References stay lazy refs
// (pass-through) and are written back as they came. The limits are the
// widest: some files declare arrays at the format's extremes.
func TestGoldenSkeletons(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/golden/*.cbor")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	wide := DecOptions{MaxElements: maxLimit, MaxByteLen: maxLimit, MaxMessageSize: maxLimit, MaxArrayBytes: maxLimit}
	refs := 0
	for _, path := range files {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		o := wide
		o.BytesSlotMin, o.PassThrough = 2, true
		d, err := Decode(want, o, false, 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := Decode(want, wide, false, 0); err != nil {
			abitest.WantKind(t, path+" without pass-through", err, core.KindInvalid) // holds references
			refs++
		}
		dsts := Destinations(d.Specs)
		if err := Fill(d, dsts); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		m, err := Encode(d.Skeleton.Bytes(), dsts, abitest.PlainMode(t))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := m.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %x\nwant %x", path, got, want)
		}
	}
	if refs == 0 {
		t.Fatal("no golden file holds references: the pass-through round trip is untested")
	}
}

// TestArraySlotMin: inline arrays shorter than ArraySlotMin cross inside
// the skeleton (big-endian ones swapped), the others stay slots, numbered
// in message order, and the skeleton with the filled slots gives the
// message again.
func TestArraySlotMin(t *testing.T) {
	zero := abitest.MustArray(t, core.DTypeUint8, []int{}, core.RowMajor, []byte{7})
	small := abitest.MustArray(t, core.DTypeInt16, []int{2, 2}, core.ColumnMajor, []byte{1, 0, 2, 0, 3, 0, 4, 0})
	large := abitest.MustArray(t, core.DTypeFloat32, []int{4}, core.RowMajor, make([]byte, 16))
	msg, err := core.Marshal([]any{zero, large, small, []any{zero, large}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(msg, DecOptions{ArraySlotMin: 16}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Specs) != 2 || d.Specs[0].Bytes != 16 || d.Specs[1].Bytes != 16 {
		t.Fatalf("specs %+v, want the two 16-byte arrays", d.Specs)
	}
	v, err := core.MustMode(core.DecOptions{Slots: true}.DecMode()).Decode(d.Skeleton.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	l := v.([]any)
	if l[1] != core.SlotIndex(0) || l[3].([]any)[1] != core.SlotIndex(1) {
		t.Fatalf("skeleton %#v: want slots 0 and 1 for the large arrays", v)
	}
	if a, ok := l[2].(*core.Array); !ok || a.Order != core.ColumnMajor || !bytes.Equal(a.Data, small.Data) {
		t.Fatalf("small array in the skeleton: %#v", l[2])
	}
	dsts := Destinations(d.Specs)
	if err := Fill(d, dsts); err != nil {
		t.Fatal(err)
	}
	back, err := Encode(d.Skeleton.Bytes(), dsts, abitest.PlainMode(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Bytes(), msg) {
		t.Fatalf("encode again:\n got %x\nwant %x", back.Bytes(), msg)
	}
	// A big-endian array lands little-endian in the skeleton as in a slot:
	// 0x56430000([1, 40([[2], 74(h'0000000100000002')]), []]).
	be := []byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01,
		0xd8, 0x28, 0x82, 0x81, 0x02, 0xd8, 0x4a, 0x48, 0, 0, 0, 1, 0, 0, 0, 2, 0x80}
	d, err = Decode(be, DecOptions{ArraySlotMin: 1 << 20}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err = core.MustMode(core.DecOptions{Slots: true}.DecMode()).Decode(d.Skeleton.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := v.(*core.Array); !ok || !bytes.Equal(a.Data, []byte{1, 0, 0, 0, 2, 0, 0, 0}) || len(d.Specs) != 0 {
		t.Fatalf("big-endian array in the skeleton: %#v, %d slots", v, len(d.Specs))
	}
	_, err = Decode(msg, DecOptions{ArraySlotMin: -1}, false, 0)
	abitest.WantKind(t, "negative array_slot_min", err, core.KindInvalid)
}

// TestDecodeInterrupt: a Decode whose Interrupted answers true ends with
// KindAborted; one whose Interrupted answers false decodes, having asked.
func TestDecodeInterrupt(t *testing.T) {
	msg, err := core.Marshal(make([]any, 10_000))
	if err != nil {
		t.Fatal(err)
	}
	asked, stop := 0, false
	o := DecOptions{Interrupted: func() bool { asked++; return stop }}
	if _, err := Decode(msg, o, false, 0); err != nil || asked == 0 {
		t.Fatalf("not interrupted: %v, asked %d times", err, asked)
	}
	stop = true
	_, err = Decode(msg, o, false, 0)
	if KindOf(err) != core.KindAborted {
		t.Fatalf("interrupted: %v, want KindAborted", err)
	}
}
