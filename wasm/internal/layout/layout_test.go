package layout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

func TestPackResult(t *testing.T) {
	for _, c := range []struct{ ptr, n uint32 }{{1, 0}, {8, 5}, {0xffff_fff8, 0xffff_ffff}} {
		ptr, n, k := UnpackResult(PackResult(c.ptr, c.n))
		if ptr != c.ptr || n != c.n || k != core.KindNone {
			t.Errorf("PackResult(%d, %d) unpacks to %d, %d, %v", c.ptr, c.n, ptr, n, k)
		}
	}
	for k := core.KindInvalid; k.Valid(); k++ {
		if ptr, n, got := UnpackResult(PackStatus(k)); ptr != 0 || n != 0 || got != k {
			t.Errorf("PackStatus(%v) unpacks to %d, %d, %v", k, ptr, n, got)
		}
	}
	// What no guest should return is a failure all the same.
	for _, r := range []uint64{0, 200, 1 << 20} {
		if _, _, k := UnpackResult(r); k != core.KindInvalid {
			t.Errorf("UnpackResult(%#x) = %v, want invalid", r, k)
		}
	}
}

// TestErrorLayout: an error crosses with its kind, offset and text, and
// reads as the native error did.
func TestErrorLayout(t *testing.T) {
	_, syntax := core.Unmarshal([]byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01})
	_, layer := abi.Decode([]byte{0xda}, abi.DecOptions{MaxDepth: -1}, false, 0)
	for _, err := range []error{syntax, layer, abi.Wrap(syntax, "skeleton"), errors.New("plain")} {
		got := ReadError(AppendError(nil, err))
		var e *core.Error
		if !errors.As(got, &e) {
			t.Fatalf("%v: ReadError gave %T", err, got)
		}
		if e.Kind != core.KindOf(err) || e.Offset != abi.OffsetOf(err) {
			t.Errorf("%v: kind %v offset %d, want %v %d", err, e.Kind, e.Offset, core.KindOf(err), abi.OffsetOf(err))
		}
		if !bytes.Contains([]byte(got.Error()), []byte(firstLine(err))) {
			t.Errorf("text %q does not carry %q", got, firstLine(err))
		}
	}
	// A core error without a cause reads exactly as natively.
	if got := ReadError(AppendError(nil, syntax)); got.Error() != syntax.Error() || !errors.Is(got, core.ErrSyntax) {
		t.Errorf("text %q, want %q", got, syntax)
	}
	for n := range 16 {
		if err := ReadError(make([]byte, n)); core.KindOf(err) != core.KindInvalid {
			t.Errorf("%d-byte error layout: %v", n, err)
		}
	}
}

// firstLine is the message of err up to its offset clause.
func firstLine(err error) string {
	s := err.Error()
	if i := bytes.Index([]byte(s), []byte(" at offset")); i >= 0 {
		return s[:i]
	}
	return s
}

func TestParcel(t *testing.T) {
	skel := abitest.Skeleton(t, []any{core.SlotIndex(0), core.SlotIndex(1), core.SlotIndex(2)})
	slots := []abi.Slot{
		{Data: []byte{1, 2, 3, 4, 5, 6}, DType: int32(core.DTypeUint8), Shape: []int64{2, 3}},
		{Data: []byte{}, DType: int32(core.DTypeFloat64), Order: int32(core.ColumnMajor), Shape: []int64{0, 4}},
		{Data: []byte("8 bytes!"), DType: abi.SlotBytes}, // ends the parcel: no padding
	}
	n := ParcelSize(len(skel), slots)
	buf := make([]byte, n)
	PutParcel(buf, skel, slots)
	gotSkel, got, err := ReadParcel(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotSkel, skel) || len(got) != len(slots) {
		t.Fatalf("skeleton %x and %d slots, want %x and %d", gotSkel, len(got), skel, len(slots))
	}
	for i, s := range got {
		w := slots[i]
		if !bytes.Equal(s.Data, w.Data) || s.DType != w.DType || s.Order != w.Order || !slices.Equal(s.Shape, w.Shape) {
			t.Errorf("slot %d: %+v, want %+v", i, s, w)
		}
		if cap(s.Data) != len(s.Data) {
			t.Errorf("slot %d: its view reaches past its bytes", i)
		}
	}
	// Every slot encodes: the parcel is what Encode takes.
	m, err := abi.Encode(gotSkel, got, abitest.PlainMode(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() == 0 {
		t.Fatal("empty message")
	}
	// A cut parcel is refused, never read past its end.
	for i := range n {
		if _, _, err := ReadParcel(buf[:i]); core.KindOf(err) != core.KindInvalid {
			t.Fatalf("parcel cut at %d of %d: %v", i, n, err)
		}
	}
	// Counts and lengths beyond the buffer are refused before allocating.
	for _, at := range []int{8, 16, 24 + 8, 24 + 24} {
		bad := slices.Clone(buf)
		binary.LittleEndian.PutUint32(bad[at:], 0xffff_fff0)
		if at == 8 || at == 24+8 {
			binary.LittleEndian.PutUint64(bad[at:], 1<<40)
		}
		if _, _, err := ReadParcel(bad); core.KindOf(err) != core.KindInvalid {
			t.Errorf("field at %d corrupted: %v", at, err)
		}
	}
	if ParcelSize(0, []abi.Slot{{Data: make([]byte, 0)}, {Shape: make([]int64, 1<<29)}}) != -1 {
		t.Error("a parcel beyond 4 GiB has a size")
	}
}

// planMessage holds an inline array, a byte string and a reference, and
// returns the two arrays' bytes.
func planMessage(t *testing.T) ([]byte, [][]byte) {
	t.Helper()
	le, _ := core.ArrayOf([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	ref, _ := core.ArrayOf([]int{4}, []int64{1, 2, 3, 4})
	mode, err := core.EncOptions{ByRef: true, RefThreshold: 32, Source: "http://127.0.0.1:1"}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mode.Marshal(map[string]any{"le": le, "blob": bytes.Repeat([]byte{9}, 40), "ref": ref})
	if err != nil {
		t.Fatal(err)
	}
	// The batch is held by a relay: the plan carries its holder too.
	pass, _ := core.DecOptions{PassThrough: true}.DecMode()
	if msg, err = pass.Rehold(msg, func(core.BatchRef) (string, error) { return "https://relay:2", nil }); err != nil {
		t.Fatal(err)
	}
	return msg, [][]byte{le.Data, ref.Data}
}

func TestPlanLayout(t *testing.T) {
	msg, arrays := planMessage(t)
	d, err := abi.Decode(msg, abi.DecOptions{BytesSlotMin: 16}, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := AppendPlan(nil, d, msg, 42)
	pl, err := ReadPlan(b, msg)
	if err != nil {
		t.Fatal(err)
	}
	p := pl.Plan
	if pl.Handle != 42 || !bytes.Equal(pl.Skeleton, d.Skeleton.Bytes()) || len(p.Slots) != len(d.Specs) {
		t.Fatalf("handle %d, skeleton %x, %d slots; want 42, %x, %d", pl.Handle, pl.Skeleton, len(p.Slots), d.Skeleton.Bytes(), len(d.Specs))
	}
	if len(p.Batches) != 1 || p.Batches[0] != d.Plan().Batches[0] || p.Batches[0].Holder != "https://relay:2" {
		t.Fatalf("batches %+v, want %+v", p.Batches, d.Plan().Batches)
	}
	kinds := map[string]int{}
	for i, s := range p.Slots {
		spec, want := d.Specs[i], d.Plan().Slots[i]
		if int32(s.DType) != spec.DType || int32(s.Order) != spec.Order || !slices.Equal(s.Shape, spec.Shape) || uint64(s.Bytes) != spec.Bytes {
			t.Errorf("slot %d: %+v, spec %+v", i, s, spec)
		}
		switch {
		case s.Ref():
			kinds["ref"]++
			if s.Batch != 0 || s.Offset != -1 || s.Inline != nil || s.Node != want.Node || s.Node <= 0 || s.Bytes != int64(len(arrays[1])) {
				t.Errorf("ref slot %d: %+v, want node %d", i, s, want.Node)
			}
		case s.DType == core.DTypeInvalid:
			kinds["string"]++
			if !bytes.Equal(s.Inline, bytes.Repeat([]byte{9}, 40)) || &s.Inline[0] != &msg[s.Offset] {
				t.Errorf("byte-string slot %d: offset %d does not view its bytes", i, s.Offset)
			}
		default:
			kinds["inline"]++
			if !bytes.Equal(s.Inline, arrays[0]) || &s.Inline[0] != &msg[s.Offset] {
				t.Errorf("inline slot %d: offset %d does not view its bytes", i, s.Offset)
			}
		}
	}
	if kinds["inline"] != 1 || kinds["ref"] != 1 || kinds["string"] != 1 {
		t.Fatalf("slot kinds %v, want one of each", kinds)
	}
	for i := range b {
		if _, err := ReadPlan(b[:i], msg); core.KindOf(err) != core.KindInvalid {
			t.Fatalf("plan cut at %d of %d: %v", i, len(b), err)
		}
	}
	if _, err := ReadPlan(append(slices.Clone(b), 0), msg); core.KindOf(err) != core.KindInvalid {
		t.Errorf("plan with a trailing byte: %v", err)
	}
	// A slot whose bytes would lie outside the message is refused: the
	// host would read them from its own copy.
	if _, err := ReadPlan(b, msg[:10]); core.KindOf(err) != core.KindInvalid {
		t.Errorf("plan of a message shorter than its slots: %v", err)
	}
}

// TestPlanLayoutSwap: a big-endian inline array is marked for the host to
// convert.
func TestPlanLayoutSwap(t *testing.T) {
	// 0x56430000([1, 40([[2], 74(h'0000000100000002')]), []])
	msg := []byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01,
		0xd8, 0x28, 0x82, 0x81, 0x02, 0xd8, 0x4a, 0x48, 0, 0, 0, 1, 0, 0, 0, 2, 0x80}
	d, err := abi.Decode(msg, abi.DecOptions{}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadPlan(AppendPlan(nil, d, msg, 0), msg)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Plan.Slots[0]
	if !s.Swap || s.Offset != 15 || s.Bytes != 8 || s.DType != core.DTypeInt32 {
		t.Fatalf("slot %+v, want a swapped int32 array at offset 15", s)
	}
}
