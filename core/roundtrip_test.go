package core

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

func mustArray(t testing.TB, dt DType, shape []int, order Order, data []byte) *Array {
	t.Helper()
	a, err := NewArray(dt, shape, order, data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	data, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%#v): %v", v, err)
	}
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatalf("Unmarshal(%x): %v", data, err)
	}
	again, err := Marshal(got)
	if err != nil {
		t.Fatalf("re-Marshal: %v", err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, data)
	}
	return got
}

func bigInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 0)
	if !ok {
		panic(s)
	}
	return n
}

func TestRoundTripScalars(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"false", false, false},
		{"true", true, true},
		{"int 0", 0, int64(0)},
		{"int -1", -1, int64(-1)},
		{"int8 min", int8(math.MinInt8), int64(math.MinInt8)},
		{"int16", int16(-300), int64(-300)},
		{"int32", int32(math.MaxInt32), int64(math.MaxInt32)},
		{"int64 min", int64(math.MinInt64), int64(math.MinInt64)},
		{"int64 max", int64(math.MaxInt64), int64(math.MaxInt64)},
		{"uint8", uint8(255), int64(255)},
		{"uint16", uint16(65535), int64(65535)},
		{"uint32", uint32(math.MaxUint32), int64(math.MaxUint32)},
		{"uint64 max", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"uint beyond int64", uint(1 << 63), uint64(1 << 63)},
		{"big small", big.NewInt(42), int64(42)},
		{"big 2^64-1", bigInt("18446744073709551615"), uint64(math.MaxUint64)},
		{"big 2^64", bigInt("18446744073709551616"), bigInt("18446744073709551616")},
		{"big -2^64", bigInt("-18446744073709551616"), bigInt("-18446744073709551616")},
		{"big -2^64-1", bigInt("-18446744073709551617"), bigInt("-18446744073709551617")},
		{"big 2^200", new(big.Int).Lsh(big.NewInt(1), 200), new(big.Int).Lsh(big.NewInt(1), 200)},
		{"float16", Float16(0x3c00), Float16(0x3c00)},
		{"float16 nan payload", Float16(0x7e01), Float16(0x7e01)},
		{"float32", float32(1.5), float32(1.5)},
		{"float32 -0", float32(math.Copysign(0, -1)), float32(math.Copysign(0, -1))},
		{"float64", 1.1, 1.1},
		{"float64 inf", math.Inf(-1), math.Inf(-1)},
		{"string", "héllo", "héllo"},
		{"empty string", "", ""},
		{"bytes", []byte{0, 1, 2}, []byte{0, 1, 2}},
		{"empty bytes", []byte{}, []byte{}},
		{"long bytes", seq(5000), seq(5000)},
		{"list", []any{1, "a", nil}, []any{int64(1), "a", nil}},
		{"empty list", []any{}, []any{}},
		{"map", map[string]any{"b": 1, "a": []any{true}}, map[string]any{"b": int64(1), "a": []any{true}}},
		{"empty map", map[string]any{}, map[string]any{}},
		{"object", Object{Name: "x.Y", Data: map[string]any{"k": 1}}, Object{Name: "x.Y", Data: map[string]any{"k": int64(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(t, tt.in)
			if !equalValue(got, tt.want) {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

// equalValue compares decoded values; floats by bits, big.Ints by value.
func equalValue(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case float32:
		b, ok := b.(float32)
		return ok && math.Float32bits(a) == math.Float32bits(b)
	case *big.Int:
		b, ok := b.(*big.Int)
		return ok && a.Cmp(b) == 0
	}
	return reflect.DeepEqual(a, b)
}

func TestRoundTripNonStringKeys(t *testing.T) {
	in := Map{
		{int64(1), "one"},
		{int64(-5), "minus five"},
		{[]byte{0xff}, "bytes"},
		{true, "true"},
		{"text", 1.5},
		{nil, "nil"},
		{bigInt("18446744073709551616"), "big"},
	}
	got := roundTrip(t, in)
	m, ok := got.(Map)
	if !ok || len(m) != len(in) {
		t.Fatalf("got %#v", got)
	}
	// Decoded pairs come in encoded-key order: 01, 24, 41ff, 6474657874, c2…, f5, f6.
	wantKeys := []any{int64(1), int64(-5), []byte{0xff}, "text", bigInt("18446744073709551616"), true, nil}
	for i, p := range m {
		if !equalValue(p.Key, wantKeys[i]) {
			t.Errorf("key %d = %#v, want %#v", i, p.Key, wantKeys[i])
		}
	}
	// map[any]any encodes the same as the equivalent Map.
	a, _ := Marshal(map[any]any{1: "x", "y": 2})
	b, _ := Marshal(Map{{"y", 2}, {1, "x"}})
	if !bytes.Equal(a, b) {
		t.Fatalf("map[any]any %x != Map %x", a, b)
	}
}

func TestRoundTripArrays(t *testing.T) {
	for dt := DTypeBool; dt < dtypeCount; dt++ {
		for _, shape := range [][]int{{}, {0}, {3}, {2, 3}, {2, 0, 4}, {1, 2, 1, 3}} {
			for _, order := range []Order{RowMajor, ColumnMajor} {
				n, _ := byteLen(dt, shape)
				data := seq(int(n))
				if dt == DTypeBool {
					for i := range data {
						data[i] &= 1
					}
				}
				in := mustArray(t, dt, shape, order, data)
				got := roundTrip(t, map[string]any{"a": in})
				a := got.(map[string]any)["a"].(*Array)
				if a.DType != dt || a.Order != wireOrder(shape, order) || !reflect.DeepEqual(a.Shape, shape) || !bytes.Equal(a.Data, data) {
					t.Errorf("%s %v %s: got %s %v %s", dt, shape, order, a.DType, a.Shape, a.Order)
				}
				if len(data) > 0 && &a.Data[0] == &data[0] {
					t.Errorf("%s: copying decode aliases the input", dt)
				}
			}
		}
	}
}

func TestBigEndianInputWrittenLittleEndian(t *testing.T) {
	// tag 40 [[2], tag 81 (float32 big-endian) h'3f800000 40000000'] = [1, 2]
	msg := envelopeHex(t, "d828 82 81 02 d851 48 3f800000 40000000")
	v, err := Unmarshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	a := v.(*Array)
	got, _ := Elements[float32](a)
	if a.DType != DTypeFloat32 || !reflect.DeepEqual(got, []float32{1, 2}) {
		t.Fatalf("got %s %v", a.DType, got)
	}
	out, _ := Marshal(a)
	want := envelopeHex(t, "d8288281 02d855 48 0000803f00000040")
	if !bytes.Equal(out, want) {
		t.Fatalf("re-encoded %x, want %x", out, want)
	}
}

func TestBareTypedArrayIsOneDimensional(t *testing.T) {
	v, err := Unmarshal(envelopeHex(t, "d84d 44 01000200")) // tag 77 int16 LE [1, 2]
	if err != nil {
		t.Fatal(err)
	}
	a := v.(*Array)
	if got, _ := Elements[int16](a); a.DType != DTypeInt16 || !reflect.DeepEqual(a.Shape, []int{2}) || !reflect.DeepEqual(got, []int16{1, 2}) {
		t.Fatalf("got %s %v %v", a.DType, a.Shape, got)
	}
}

func TestDeepButLegalNesting(t *testing.T) {
	var v any = "leaf"
	for range DefaultMaxDepth {
		v = []any{v}
	}
	roundTrip(t, v)
	v = []any{v}
	if _, err := Marshal(v); !errors.Is(err, ErrLimit) {
		t.Fatalf("encode one level deeper: got %v, want ErrLimit", err)
	}
	deep, _ := EncOptions{MaxDepth: DefaultMaxDepth + 1}.EncMode()
	data, err := deep.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(data); !errors.Is(err, ErrLimit) {
		t.Fatalf("one level deeper: got %v, want ErrLimit", err)
	}
}

func TestDeterministicMapOrder(t *testing.T) {
	keys := []string{"b", "a", "aa", "c", "", "zzz", "ab", strings.Repeat("k", 30)}
	var first []byte
	for i := range 20 {
		m := map[string]any{}
		for j := range keys {
			k := keys[(i+j)%len(keys)]
			m[k] = j
			m[k] = k // last write wins; value independent of order
		}
		data, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = data
		} else if !bytes.Equal(first, data) {
			t.Fatalf("round %d encoded differently:\n%x\n%x", i, data, first)
		}
	}
	// Shorter keys first, then bytewise.
	data, _ := Marshal(map[string]any{"b": 1, "aa": 2, "a": 3})
	want := envelopeHex(t, "a3 6161 03 6162 01 626161 02")
	if !bytes.Equal(data, want) {
		t.Fatalf("got %x, want %x", data, want)
	}
	// Map pairs sort by encoded key whatever their order.
	a, _ := Marshal(Map{{int64(10), 1}, {"x", 2}, {int64(-1), 3}})
	b, _ := Marshal(Map{{int64(-1), 3}, {int64(10), 1}, {"x", 2}})
	if !bytes.Equal(a, b) {
		t.Fatalf("Map order changed the bytes: %x vs %x", a, b)
	}
}

// envelopeHex wraps a body given in hex (spaces allowed) in a version-1
// envelope with no batches.
func envelopeHex(t testing.TB, body string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll("da56430000 83 01"+body+"80", " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeErrors(t *testing.T) {
	type unregistered struct{}
	cyclic := []any{nil}
	cyclic[0] = cyclic
	tests := []struct {
		name string
		in   any
		kind Kind
	}{
		{"unregistered type", unregistered{}, KindInvalid},
		{"cycle", cyclic, KindLimit},
		{"bad array length", &Array{DType: DTypeFloat32, Shape: []int{3}, Data: make([]byte, 8)}, KindMismatch},
		{"bad dtype", &Array{DType: 99, Shape: []int{}, Data: nil}, KindMismatch},
		{"bad bool", &Array{DType: DTypeBool, Shape: []int{1}, Data: []byte{2}}, KindMismatch},
		{"negative dim", &Array{DType: DTypeInt8, Shape: []int{-1}, Data: nil}, KindMismatch},
		{"nil big", (*big.Int)(nil), KindInvalid},
		{"duplicate Map key", Map{{int64(1), 1}, {int64(1), 2}}, KindInvalid},
		{"non-scalar key", Map{{[]any{}, 1}}, KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Marshal(tt.in)
			if KindOf(err) != tt.kind {
				t.Fatalf("got %v (kind %v), want kind %v", err, KindOf(err), tt.kind)
			}
		})
	}
}

func TestMapKeepsMessageOrder(t *testing.T) {
	// Text keys before the first non-text key must keep their order too.
	data := envelopeHex(t, "a4 6161 01 6162 02 6163 03 f5 04")
	for range 50 {
		v, err := Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		m := v.(Map)
		if m[0].Key != "a" || m[1].Key != "b" || m[2].Key != "c" || m[3].Key != true {
			t.Fatalf("pairs out of message order: %v", m)
		}
	}
}

func TestEncodeAndDecodeAgreeOnDepth(t *testing.T) {
	leaves := map[string]any{
		"array":  mustArray(t, DTypeInt8, []int{1}, RowMajor, []byte{1}),
		"object": Object{Name: "n", Data: 1},
		"bignum": bigInt("0x10000000000000000"),
		"list":   []any{},
	}
	for name, leaf := range leaves {
		t.Run(name, func(t *testing.T) {
			// Wrap the leaf in ever more lists: the first depth Marshal
			// refuses must be the first depth Unmarshal would refuse.
			deep, _ := EncOptions{MaxDepth: MaxDepthLimit}.EncMode()
			v := leaf
			for range DefaultMaxDepth + 4 {
				encErr := func() error { _, err := Marshal(v); return err }()
				data, err := deep.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				_, decErr := Unmarshal(data)
				if (encErr == nil) != (decErr == nil) {
					t.Fatalf("encode error %v but decode error %v", encErr, decErr)
				}
				v = []any{v}
			}
		})
	}
}

func TestEncodeRejectsInvalidText(t *testing.T) {
	for _, v := range []any{"\xff", map[string]any{"\xfe": 1}, Object{Name: "\xff", Data: nil}, Object{Name: ""}} {
		if _, err := Marshal(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("%#v: got %v, want ErrInvalid", v, err)
		}
	}
}

func TestFloatMapKeysRejected(t *testing.T) {
	// 1.0 as float16 and float32 are one key to RFC 8949 §5.6.1; we do not
	// take float keys at all.
	if _, err := Marshal(Map{{Float16(0x3c00), 0}, {float32(1), 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("encode: got %v", err)
	}
	if _, err := Unmarshal(envelopeHex(t, "a1 f93c00 00")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("decode: got %v", err)
	}
}
