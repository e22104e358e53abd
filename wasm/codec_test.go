package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

const goldenDir = "../testdata/golden"

// TestGoldenGuest runs the golden files of testdata/golden through the
// guest: every deterministic message decodes to the value core decodes
// and re-encodes byte for byte, every lenient one re-encodes to its twin,
// and every bad one fails with the kind (and offset) core reports.
func TestGoldenGuest(t *testing.T) {
	rt := newRuntime(t, Options{})
	enc, err := rt.EncMode(core.EncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	native, _ := core.DecOptions{PassThrough: true}.DecMode()
	guest, err := rt.DecMode(core.DecOptions{PassThrough: true})
	if err != nil {
		t.Fatal(err)
	}
	positive, _ := filepath.Glob(filepath.Join(goldenDir, "*.cbor"))
	lenient, _ := filepath.Glob(filepath.Join(goldenDir, "lenient", "*.cbor"))
	bad, _ := filepath.Glob(filepath.Join(goldenDir, "bad", "*.cbor"))
	if len(positive) < 20 || len(lenient) == 0 || len(bad) < 20 {
		t.Fatalf("golden files: %d positive, %d lenient, %d bad", len(positive), len(lenient), len(bad))
	}
	for _, path := range positive {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data := readFile(t, path)
			want, err := native.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := guest.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(t, got, want) {
				t.Fatalf("guest decodes\n %#v\ncore decodes\n %#v", got, want)
			}
			again, err := enc.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("guest re-encodes\n %x\nnot the file\n %x", clip(again), clip(data))
			}
		})
	}
	for _, path := range lenient {
		t.Run("lenient/"+filepath.Base(path), func(t *testing.T) {
			var side struct{ Twin string }
			readJSON(t, strings.TrimSuffix(path, ".cbor")+".json", &side)
			got, err := guest.Decode(readFile(t, path))
			if err != nil {
				t.Fatal(err)
			}
			again, err := enc.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if twin := readFile(t, filepath.Join(goldenDir, side.Twin+".cbor")); !bytes.Equal(again, twin) {
				t.Fatalf("re-encodes to\n %x\nnot its twin %s\n %x", clip(again), side.Twin, clip(twin))
			}
		})
	}
	for _, path := range bad {
		t.Run("bad/"+filepath.Base(path), func(t *testing.T) {
			var side struct {
				Kind    string
				Offset  *int64
				Options map[string]any
			}
			readJSON(t, strings.TrimSuffix(path, ".cbor")+".json", &side)
			o := goldenOptions(t, side.Options)
			nm, err := o.DecMode()
			if err != nil {
				t.Fatal(err)
			}
			gm, err := rt.DecMode(o)
			if err != nil {
				t.Fatal(err)
			}
			data := readFile(t, path)
			_, nerr := nm.Decode(data)
			v, gerr := gm.Decode(data)
			var ge *core.Error
			if !errors.As(gerr, &ge) || v != nil {
				t.Fatalf("guest: %v, %v; want a *core.Error and no value", v, gerr)
			}
			if ge.Kind.String() != side.Kind || ge.Kind != core.KindOf(nerr) {
				t.Fatalf("guest: %v (%v); core: %v; the file says %s", gerr, ge.Kind, nerr, side.Kind)
			}
			if side.Offset != nil && ge.Offset != *side.Offset {
				t.Fatalf("guest: offset %d (%v), want %d", ge.Offset, gerr, *side.Offset)
			}
			if gerr.Error() != nerr.Error() {
				t.Errorf("guest says %q, core %q", gerr, nerr)
			}
		})
	}
}

// sameValue reports whether a and b are equal values: deeply equal, or,
// where NaN breaks that, encoding to the same bytes.
func sameValue(t *testing.T, a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ma, err := core.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := core.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ma, mb) && reflect.TypeOf(a) == reflect.TypeOf(b)
}

// goldenOptions converts a bad case's "options" (the Python package's
// names) into core's.
func goldenOptions(t *testing.T, opts map[string]any) core.DecOptions {
	o := core.DecOptions{PassThrough: true}
	for k, v := range opts {
		n, _ := v.(float64)
		switch k {
		case "max_depth":
			o.MaxDepth = int(n)
		case "max_elements":
			o.MaxElements = int(n)
		case "max_byte_len":
			o.MaxByteLen = int64(n)
		case "max_message_size":
			o.MaxMessageSize = int64(n)
		case "max_array_bytes":
			o.MaxArrayBytes = int64(n)
		case "unknown":
			if v == "error" {
				o.UnknownTypes = core.UnknownAsError
			}
		default:
			t.Fatalf("unknown golden option %q", k)
		}
	}
	return o
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// arrayOf returns an array of dt with shape [2, 3] whose bytes count up
// (bools alternate).
func arrayOf(t testing.TB, dt core.DType, order core.Order) *core.Array {
	b := make([]byte, 6*dt.Size())
	for i := range b {
		b[i] = byte(i*7 + 1)
		if dt == core.DTypeBool {
			b[i] = byte(i % 2)
		}
	}
	a, err := core.NewArray(dt, []int{2, 3}, order, b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestValues: values of every kind, arrays of every dtype and order,
// encode in the guest as in core, and decode back.
func TestValues(t *testing.T) {
	rt := newRuntime(t, Options{})
	var arrays []any
	for dt := core.DType(1); dt.Valid(); dt++ {
		arrays = append(arrays, arrayOf(t, dt, core.RowMajor), arrayOf(t, dt, core.ColumnMajor))
	}
	empty, _ := core.NewArray(core.DTypeFloat32, []int{0, 4}, core.RowMajor, nil)
	scalar, _ := core.NewArray(core.DTypeInt64, nil, core.RowMajor, make([]byte, 8))
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	values := map[string]any{
		"scalars": []any{nil, true, false, int64(-1), uint64(1 << 63), huge, core.Float16(0x3c00), float32(1.5), 2.25, "text", []byte{1, 2}},
		"arrays":  arrays,
		"nested":  map[string]any{"a": []any{map[string]any{"b": empty}}, "c": scalar},
		"pairs":   core.Map{{Key: int64(1), Value: arrays[0]}, {Key: "x", Value: "y"}},
		"object":  core.Object{Name: "opt.SGD", Data: map[string]any{"lr": 0.1, "w": arrays[1]}},
		"lazy": &core.LazyRef{Batch: core.BatchRef{Source: "http://127.0.0.1:1", Items: 1, Bytes: 24},
			DType: core.DTypeFloat32, Shape: []int{2, 3}},
		"shared": []any{arrays[2], arrays[2]},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) { roundTrip(t, rt, v) })
	}
	roundTrip(t, rt, values)
}

// TestEncodeErrors: a value core refuses, the guest refuses with the same
// kind, and the caller's value is left as it was.
func TestEncodeErrors(t *testing.T) {
	rt := newRuntime(t, Options{})
	cycle := []any{nil}
	cycle[0] = cycle
	bad := &core.Array{DType: core.DTypeFloat32, Shape: []int{3}, Data: make([]byte, 8)}
	enc, err := rt.EncMode(core.EncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shallow, err := rt.EncMode(core.EncOptions{MaxDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	nativeShallow, _ := core.EncOptions{MaxDepth: 4}.EncMode()
	deep := []any{[]any{arrayOf(t, core.DTypeUint8, core.RowMajor)}}
	for name, v := range map[string]any{
		"invalid UTF-8": "\xff",
		"channel":       make(chan int),
		"cycle":         cycle,
		"bad array":     bad,
		"nil array":     (*core.Array)(nil),
		"slot":          core.SlotIndex(0),
	} {
		_, nerr := core.Marshal(v)
		_, gerr := enc.Marshal(v)
		if nerr == nil || core.KindOf(gerr) != core.KindOf(nerr) {
			t.Errorf("%s: guest %v, core %v", name, gerr, nerr)
		}
	}
	// An array counts three levels, in the guest as in core.
	_, nerr := nativeShallow.Marshal(deep)
	_, gerr := shallow.Marshal(deep)
	if nerr == nil || core.KindOf(gerr) != core.KindOf(nerr) {
		t.Errorf("deep: guest %v, core %v", gerr, nerr)
	}
	if _, err := shallow.Marshal(deep[0]); err != nil {
		t.Errorf("one level less: %v", err)
	}
	// The splitter copies containers: the caller's value keeps its array.
	a := arrayOf(t, core.DTypeInt8, core.RowMajor)
	v := map[string]any{"a": a, "l": []any{a}}
	if _, err := enc.Marshal(v); err != nil {
		t.Fatal(err)
	}
	if v["a"] != a || v["l"].([]any)[0] != a {
		t.Fatal("Marshal changed the caller's value")
	}
}

// TestModes: options are validated as core validates them; what the
// guest cannot do yet is refused up front.
func TestModes(t *testing.T) {
	rt := newRuntime(t, Options{})
	for _, o := range []core.EncOptions{{MaxDepth: -1}, {ByRef: true}, {ByRef: true, Source: "s", RefThreshold: -1}, {Registry: &core.Registry{}}} {
		if _, err := rt.EncMode(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("EncMode(%+v) = %v, want KindInvalid", o, err)
		}
	}
	for _, o := range []core.DecOptions{{MaxDepth: 5000}, {MaxArrayBytes: -1}, {Registry: &core.Registry{}}, {Slots: true}} {
		if _, err := rt.DecMode(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("DecMode(%+v) = %v, want KindInvalid", o, err)
		}
	}
	for _, o := range []Options{{MemoryLimit: 1 << 20}, {MemoryLimit: 5 << 30}, {MaxIdle: 2000}, {MaxIdleMemory: -1}, {MemoryLimit: 32 << 20, MaxIdleMemory: 33 << 20}} {
		if _, err := NewRuntime(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("NewRuntime(%+v) = %v, want KindInvalid", o, err)
		}
	}
	if r, err := NewRuntime(Options{MemoryLimit: 20<<20 + 1}); err != nil || r.MemoryLimit() != 20<<20+64<<10 {
		t.Errorf("a limit of 20 MiB + 1 byte: %v, %v; want it rounded up to a page", r, err)
	} else {
		r.Close()
	}
}

// TestDecodePlacement: the host places inline arrays from its own copy of
// the message: views of it with ZeroCopy, copies without, converted from
// big-endian either way.
func TestDecodePlacement(t *testing.T) {
	rt := newRuntime(t, Options{})
	a := arrayOf(t, core.DTypeFloat64, core.RowMajor)
	msg, _ := core.Marshal([]any{a})
	inside := func(b []byte) bool {
		p, base := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(msg)))
		return p >= base && p < base+uintptr(len(msg))
	}
	for _, zero := range []bool{false, true} {
		dec, _ := rt.DecMode(core.DecOptions{ZeroCopy: zero})
		v, err := dec.Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		got := v.([]any)[0].(*core.Array)
		if !bytes.Equal(got.Data, a.Data) || inside(got.Data) != zero {
			t.Errorf("ZeroCopy %v: data %x (a view of the message: %v)", zero, got.Data, inside(got.Data))
		}
	}
	// 0x56430000([1, 40([[2], 74(h'0000000100000002')]), []]): int32 [1, 2]
	// big-endian.
	be := []byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01,
		0xd8, 0x28, 0x82, 0x81, 0x02, 0xd8, 0x4a, 0x48, 0, 0, 0, 1, 0, 0, 0, 2, 0x80}
	dec, _ := rt.DecMode(core.DecOptions{ZeroCopy: true})
	v, err := dec.Decode(be)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(*core.Array); !bytes.Equal(got.Data, []byte{1, 0, 0, 0, 2, 0, 0, 0}) {
		t.Fatalf("big-endian int32 [1, 2] decodes to %x", got.Data)
	}
}

// TestDecodeReferences: referenced arrays are downloaded by the host
// through the Fetcher, straight from the source's table; without one the
// error is core's; in pass-through they stay lazy.
func TestDecodeReferences(t *testing.T) {
	rt := newRuntime(t, Options{})
	table, err := core.NewTable(core.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 31)
	}
	w, _ := core.NewArray(core.DTypeUint8, []int{3, 1 << 20}, core.RowMajor, big)
	small := arrayOf(t, core.DTypeInt16, core.ColumnMajor)
	mode, _ := core.EncOptions{ByRef: true, Source: "src"}.EncMode()
	m, err := mode.Encode(map[string]any{"w": w, "s": small})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := table.Publish(m.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	msg := m.Bytes()

	for _, o := range []core.DecOptions{{}, {PassThrough: true}} {
		nm, _ := o.DecMode()
		gm, _ := rt.DecMode(o)
		nv, nerr := nm.Decode(msg)
		gv, gerr := gm.Decode(msg)
		if core.KindOf(gerr) != core.KindOf(nerr) || !reflect.DeepEqual(gv, nv) {
			t.Errorf("%+v: guest %v, %v; core %v, %v", o, gv, gerr, nv, nerr)
		}
	}
	var allocated int64
	gm, _ := rt.DecMode(core.DecOptions{
		Fetcher: &core.TableFetcher{Sources: map[string]*core.Table{"src": table}, Receiver: "r1"},
		Allocator: func(_ core.DType, _ []int, _ core.Order, n int64) ([]byte, error) {
			allocated += n
			return make([]byte, n), nil
		},
	})
	v, err := gm.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(map[string]any)
	if !bytes.Equal(got["w"].(*core.Array).Data, big) || !bytes.Equal(got["s"].(*core.Array).Data, small.Data) {
		t.Fatal("downloaded or placed bytes differ")
	}
	if allocated != int64(len(big)) {
		t.Errorf("allocator gave %d bytes, want %d (the reference only)", allocated, len(big))
	}
	if out, err := tx.Wait(t.Context()); err != nil || out.State != core.StateCompleted {
		t.Fatalf("transaction %v, %v; want completed", out.State, err)
	}
}

// TestInputBeyondLimit: an input that cannot fit in the guest's memory
// is a limit error before the guest sees it; one that fits but needs more
// memory than the limit to encode runs the guest out of memory: a limit
// error too, and the next call works.
func TestInputBeyondLimit(t *testing.T) {
	rt := newRuntime(t, Options{MemoryLimit: 32 << 20})
	dec, _ := rt.DecMode(core.DecOptions{})
	enc, _ := rt.EncMode(core.EncOptions{})
	wantKind(t, "decode 33 MiB", func() error { _, err := dec.Decode(make([]byte, 33<<20)); return err }(), core.KindLimit)
	a, _ := core.NewArray(core.DTypeUint8, []int{33 << 20}, core.RowMajor, make([]byte, 33<<20))
	wantKind(t, "encode 33 MiB", func() error { _, err := enc.Marshal(a); return err }(), core.KindLimit)
	// 20 MiB in and 20 MiB out do not fit in 32 MiB.
	b, _ := core.NewArray(core.DTypeUint8, []int{20 << 20}, core.RowMajor, make([]byte, 20<<20))
	_, err := enc.Marshal(b)
	wantKind(t, "encode 20 MiB", err, core.KindLimit)
	if !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("error %q does not say the guest ran out of memory", err)
	}
	roundTrip(t, rt, map[string]any{"after": arrayOf(t, core.DTypeFloat32, core.RowMajor)})
}

// TestDecodeOutOfMemory: a valid message that needs more memory than the
// limit to decode is a limit error, whatever text the guest's runtime
// dies with when the host refuses it a grow, on a fresh instance and on a
// reused one alike; and the next call works.
func TestDecodeOutOfMemory(t *testing.T) {
	rt := newRuntime(t, Options{MemoryLimit: 16 << 20, MaxIdle: 1})
	dec, _ := rt.DecMode(core.DecOptions{})
	for _, n := range []int{8 << 20, 4 << 20} {
		a, _ := core.NewArray(core.DTypeUint8, []int{n}, core.RowMajor, make([]byte, n))
		msg, err := core.Marshal(map[string]any{"a": a})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if _, err := dec.Decode(msg); err != nil {
				wantKind(t, fmt.Sprintf("decode %d MiB, call %d", n>>20, i), err, core.KindLimit)
			}
			works(t, rt)
		}
	}
}

// TestHammer: many goroutines encode and decode at once on one Runtime,
// each call on an instance of its own, with a pool smaller than the
// callers.
func TestHammer(t *testing.T) {
	rt := newRuntime(t, Options{MaxIdle: 2})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				a, _ := core.ArrayOf([]int{3}, []int32{int32(g), int32(i), int32(g * i)})
				roundTrip(t, rt, map[string]any{"g": int64(g), "i": int64(i), "a": a})
			}
		})
	}
	wg.Wait()
	rt.mu.Lock()
	idle := len(rt.idle)
	rt.mu.Unlock()
	if idle == 0 || idle > 2 {
		t.Fatalf("%d idle instances, want 1 or 2", idle)
	}
}

// TestSwitchConstructor: code written against Encoder and Decoder runs
// natively or in the guest, by the constructor alone.
func TestSwitchConstructor(t *testing.T) {
	rt := newRuntime(t, Options{})
	native := func() (Encoder, Decoder) {
		e, _ := core.EncOptions{}.EncMode()
		d, _ := core.DecOptions{}.DecMode()
		return e, d
	}
	sandboxed := func() (Encoder, Decoder) {
		e, _ := rt.EncMode(core.EncOptions{})
		d, _ := rt.DecMode(core.DecOptions{})
		return e, d
	}
	v := map[string]any{"round": int64(3), "w": arrayOf(t, core.DTypeBFloat16, core.RowMajor)}
	var msgs [][]byte
	for _, mk := range []func() (Encoder, Decoder){native, sandboxed} {
		enc, dec := mk()
		msg, err := enc.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := dec.DecodeContext(context.Background(), msg)
		if err != nil || !reflect.DeepEqual(back, v) {
			t.Fatalf("%v: %v", back, err)
		}
		msgs = append(msgs, msg)
	}
	if !bytes.Equal(msgs[0], msgs[1]) {
		t.Fatal("native and sandboxed messages differ")
	}
}
