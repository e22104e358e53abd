package wasm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

// seededRand is a deterministic source of randomness.
func seededRand(seed string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte(seed)))
}

// encodeBoth encodes v with o in the guest and in core, each with the
// randomness of seed, and checks that they give the same bytes.
func encodeBoth(t *testing.T, rt *Runtime, o core.EncOptions, seed string, v any) (guest *Message, native *core.Message) {
	t.Helper()
	o.Rand = seededRand(seed)
	native, err := core.MustMode(o.EncMode()).Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	o.Rand = seededRand(seed)
	enc, err := rt.EncMode(o)
	if err != nil {
		t.Fatal(err)
	}
	guest, err = enc.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(guest.Bytes(), native.Bytes()) || guest.Len() != native.Len() {
		t.Fatalf("guest:\n %x\ncore:\n %x", clip(guest.Bytes()), clip(native.Bytes()))
	}
	return guest, native
}

// refModel is a value with arrays by reference and inline: the same array
// twice, two views of the same memory, a column-major array, small arrays,
// nesting, a typed object and a lazy ref passed through.
func refModel(t testing.TB) map[string]any {
	big := make([]byte, 4096)
	for i := range big {
		big[i] = byte(i * 31)
	}
	w, _ := core.NewArray(core.DTypeFloat32, []int{1024}, core.RowMajor, big)
	alias, _ := core.NewArray(core.DTypeFloat32, []int{1024}, core.RowMajor, big) // the same memory: one item
	other, _ := core.NewArray(core.DTypeInt32, []int{32, 32}, core.RowMajor, big) // the same memory seen otherwise: another
	col, _ := core.NewArray(core.DTypeFloat64, []int{16, 32}, core.ColumnMajor, slices.Clone(big))
	flags := make([]byte, 2048)
	for i := range flags {
		flags[i] = byte(i % 2)
	}
	b, _ := core.NewArray(core.DTypeBool, []int{2048}, core.RowMajor, flags)
	lazy := &core.LazyRef{Batch: core.BatchRef{Source: "http://127.0.0.1:1", Items: 3, Bytes: 1 << 30}, Item: 2, DType: core.DTypeFloat16, Shape: []int{1 << 29}}
	return map[string]any{
		"round": int64(3),
		"w":     w, "again": w, "alias": alias, "other": other,
		"layers": []any{col, map[string]any{"flags": b, "small": arrayOf(t, core.DTypeInt16, core.RowMajor)}},
		"obj":    core.Object{Name: "Tensor", Data: []any{w, arrayOf(t, core.DTypeUint8, core.ColumnMajor)}},
		"lazy":   lazy,
	}
}

// TestEncodeByRef: encoding by reference in the guest gives the bytes core
// gives from the same randomness, and a batch like core's whose items view
// the caller's arrays; no array of RefThreshold bytes enters the guest.
func TestEncodeByRef(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := refModel(t)
	o := core.EncOptions{ByRef: true, RefThreshold: 1024, Source: "http://127.0.0.1:9"}
	got, want := encodeBoth(t, rt, o, "encode", v)
	gb, wb := got.Batch(), want.Batch()
	if gb == nil || gb.Ref != wb.Ref || len(gb.Items) != len(wb.Items) || len(gb.Items) != 4 {
		t.Fatalf("batch %v, core's %v", gb, wb)
	}
	for i, it := range gb.Items {
		w := wb.Items[i]
		if it.ID != w.ID || it.DType != w.DType || it.Order != w.Order || !slices.Equal(it.Shape, w.Shape) ||
			unsafe.SliceData(it.Data) != unsafe.SliceData(w.Data) || len(it.Data) != len(w.Data) || it.Extern != nil {
			t.Fatalf("item %d: %+v, core's %+v (the same view of the caller's memory)", i, it, w)
		}
	}
	if m := got.Batch().Manifest(); len(m.Items) != 4 {
		t.Fatal("the host cannot checksum the batch")
	}
	// Marshal gives the bytes alone, as core's does.
	o.Rand = seededRand("encode")
	enc, _ := rt.EncMode(o)
	if b, err := enc.Marshal(v); err != nil || !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("Marshal: %v", err)
	}
	var buf bytes.Buffer
	if n, err := got.WriteTo(&buf); err != nil || n != int64(got.Len()) || !bytes.Equal(buf.Bytes(), want.Bytes()) {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}

	// Below the threshold nothing goes by reference: no batch.
	small, err := enc.Encode(map[string]any{"s": arrayOf(t, core.DTypeInt8, core.RowMajor)})
	if err != nil || small.Batch() != nil {
		t.Fatalf("inline only: batch %v, %v", small.Batch(), err)
	}
}

// TestEncodeByRefBeyondGuestMemory: arrays by reference never enter the
// guest, so a model many times its memory limit encodes in it.
func TestEncodeByRefBeyondGuestMemory(t *testing.T) {
	rt := newRuntime(t, Options{MemoryLimit: 16 << 20})
	model := map[string]any{}
	mem := make([]byte, 64<<20)
	for i, dt := range []core.DType{core.DTypeFloat32, core.DTypeFloat64, core.DTypeInt16, core.DTypeUint8} {
		a, err := core.NewArray(dt, []int{len(mem) / dt.Size()}, core.RowMajor, mem)
		if err != nil {
			t.Fatal(err)
		}
		model[string(rune('a'+i))] = a
	}
	enc, err := rt.EncMode(core.EncOptions{ByRef: true, Source: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := enc.Encode(model)
	if err != nil {
		t.Fatal(err)
	}
	if b := msg.Batch(); b == nil || b.Ref.Bytes != 4*64<<20 || msg.Len() > 4096 {
		t.Fatalf("batch %v, message of %d bytes", b, msg.Len())
	}
	// Inline, the same model does not fit: a clear limit error.
	inline, _ := rt.EncMode(core.EncOptions{})
	if _, err := inline.Marshal(model); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("inline: %v, want ErrLimit", err)
	}
}

// failingRand fails every read.
type failingRand struct{}

func (failingRand) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// TestEncodeByRefRandomness: the guest draws ref ids and tokens from the
// host's Rand: fresh ones each encode by default; a failing source is an
// error of the call (KindInvalid, as natively), and the guest goes on.
func TestEncodeByRefRandomness(t *testing.T) {
	rt := newRuntime(t, Options{MaxIdle: 1})
	v := map[string]any{"w": arrayOf(t, core.DTypeFloat64, core.RowMajor)}
	o := core.EncOptions{ByRef: true, RefThreshold: 8, Source: "http://127.0.0.1:9"}
	enc, err := rt.EncMode(o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := enc.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := enc.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if a.Batch().Ref.RefID == b.Batch().Ref.RefID || a.Batch().Ref.Token == b.Batch().Ref.Token {
		t.Fatal("two encodes minted the same ref id or token")
	}
	o.Rand = failingRand{}
	bad, _ := rt.EncMode(o)
	native, _ := o.EncMode()
	_, nerr := native.Encode(v)
	_, gerr := bad.Encode(v)
	if !errors.Is(gerr, core.ErrInvalid) || !errors.Is(nerr, core.ErrInvalid) || !strings.HasPrefix(gerr.Error(), "core: ref id: ") {
		t.Fatalf("a failing source: guest %v, core %v", gerr, nerr)
	}
	if _, err := enc.Encode(v); err != nil {
		t.Fatalf("the next encode: %v", err)
	}
}

// TestEncodeByRefErrors: values core refuses by reference, the guest
// refuses with the same kind and text.
func TestEncodeByRefErrors(t *testing.T) {
	rt := newRuntime(t, Options{})
	o := core.EncOptions{ByRef: true, RefThreshold: 8, Source: "http://127.0.0.1:9", MaxDepth: 4}
	native, _ := o.EncMode()
	enc, err := rt.EncMode(o)
	if err != nil {
		t.Fatal(err)
	}
	notBool := &core.Array{DType: core.DTypeBool, Shape: []int{16}, Data: bytes.Repeat([]byte{2}, 16)}
	for name, v := range map[string]any{
		"not bool":  []any{notBool},
		"short":     []any{&core.Array{DType: core.DTypeFloat32, Shape: []int{3}, Data: make([]byte, 8)}},
		"too deep":  []any{[]any{arrayOf(t, core.DTypeFloat64, core.RowMajor)}},
		"nil array": []any{(*core.Array)(nil)},
	} {
		_, nerr := native.Encode(v)
		_, gerr := enc.Encode(v)
		if nerr == nil || core.KindOf(gerr) != core.KindOf(nerr) || gerr.Error() != nerr.Error() {
			t.Errorf("%s: guest %v, core %v", name, gerr, nerr)
		}
	}
	// An Extern has no bytes here to serve.
	if _, err := enc.Encode([]any{&core.Extern{DType: core.DTypeInt8, Shape: []int{4}}}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("an Extern: %v", err)
	}
}
