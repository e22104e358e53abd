package core

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

type (
	metrics   map[string]float64
	roundNum  int
	layerName string
	weights   []float32
)

// TestGoTypesEncode: the obvious Go types encode as the value-model value
// they stand for, byte for byte; typed slices of a fixed-width element are
// 1-D arrays viewing the slice.
func TestGoTypesEncode(t *testing.T) {
	f32, _ := ArrayOf(nil, []float32{1, 2})
	i64, _ := ArrayOf(nil, []int64{1, 2})
	u64, _ := ArrayOf(nil, []uint64{1, 2})
	bools, _ := ArrayOf(nil, []bool{true, false})
	f16, _ := ArrayOf(nil, []Float16{0x3c00})
	c128, _ := ArrayOf(nil, []complex128{1i})
	empty, _ := ArrayOf(nil, []float64{})
	for _, c := range []struct {
		name    string
		in      any
		inModel any
	}{
		{"[]float32", []float32{1, 2}, f32},
		{"[]int64", []int64{1, 2}, i64},
		{"[]int", []int{1, 2}, i64},
		{"[]uint", []uint{1, 2}, u64},
		{"[]bool", []bool{true, false}, bools},
		{"[]Float16", []Float16{0x3c00}, f16},
		{"[]complex128", []complex128{1i}, c128},
		{"empty []float64", []float64{}, empty},
		{"named []float32", weights{1, 2}, f32},
		{"[]byte stays bytes", []byte{1, 2}, []byte{1, 2}},
		{"[]string", []string{"a", "b"}, []any{"a", "b"}},
		{"[][]float32", [][]float32{{1, 2}}, []any{f32}},
		{"[]map[string]any", []map[string]any{{"a": 1}}, []any{map[string]any{"a": 1}}},
		{"[][]byte", [][]byte{{1}}, []any{[]byte{1}}},
		{"map[string]int", map[string]int{"a": 1, "bb": 2}, map[string]any{"a": 1, "bb": 2}},
		{"map[string][]float32", map[string][]float32{"w": {1, 2}}, map[string]any{"w": f32}},
		{"map[string]*Array", map[string]*Array{"w": f32}, map[string]any{"w": f32}},
		{"named map", metrics{"loss": 0.5}, map[string]any{"loss": 0.5}},
		{"map[int]string", map[int]string{2: "b", 1: "a"}, Map{{1, "a"}, {2, "b"}}},
		{"map[bool]int", map[bool]int{true: 1}, Map{{true, 1}}},
		{"map[layerName]int", map[layerName]int{"fc": 1}, map[string]any{"fc": 1}},
		{"named int", roundNum(3), 3},
		{"named string", layerName("fc"), "fc"},
		{"nil []float64", []float64(nil), empty},
		{"nil map[string]int", map[string]int(nil), map[string]any{}},
	} {
		got, err := Marshal(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		want, err := Marshal(c.inModel)
		if err != nil {
			t.Fatalf("%s: the model value: %v", c.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encodes as %x, want %x", c.name, got, want)
		}
	}
}

// TestGoTypesByReference: a typed slice is an array like any other: large
// enough, it goes by reference, as a view of the slice (no copy).
func TestGoTypesByReference(t *testing.T) {
	em := MustMode(EncOptions{ByRef: true, RefThreshold: 8, Source: "s"}.EncMode())
	w := []float32{1, 2, 3, 4}
	msg, err := em.Encode(map[string]any{"w": w, "small": []float32{1}})
	if err != nil {
		t.Fatal(err)
	}
	b := msg.Batch()
	if b == nil || len(b.Items) != 1 || len(b.Items[0].Data) != 16 || unsafe.SliceData(b.Items[0].Data) != (*byte)(unsafe.Pointer(&w[0])) {
		t.Fatalf("batch %+v: want one item, a view of w", b)
	}
	v, err := passThrough.Decode(msg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(map[string]any)["w"].(*LazyRef); !ok {
		t.Fatalf("w decoded as %T, want a reference", v.(map[string]any)["w"])
	}
}

// TestGoTypesRefused: what does not encode says what to convert to, in
// words a Python user of the C ABI would understand too.
func TestGoTypesRefused(t *testing.T) {
	type point struct{ X, Y int }
	for _, c := range []struct {
		name string
		in   any
		want []string
	}{
		{"struct", point{1, 2}, []string{"a Go struct (core.point)", "map[string]any", "Registry"}},
		{"pointer to struct", &point{1, 2}, []string{"a Go pointer (*core.point)", "map[string]any"}},
		{"Go array", [2]float32{1, 2}, []string{"a Go array ([2]float32)", "slice"}},
		{"channel", make(chan int), []string{"a Go chan int"}},
		{"map with struct keys", map[point]int{{}: 1}, []string{"map key", "a Go struct"}},
		{"map with float keys", map[float64]int{1: 1}, []string{"map key is a float"}},
		{"struct in a list", []any{point{}}, []string{"a Go struct"}},
		{"bfloat16 scalar", BFloat16From(1), []string{"a bfloat16 scalar", "0-d array"}},
		{"float8 scalar", Float8E5M2(0x3c), []string{"a float8_e5m2 scalar", "0-d array"}},
		{"complex scalar", complex64(1i), []string{"a complex64 scalar", "0-d array"}},
	} {
		_, err := Marshal(c.in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid {
			t.Errorf("%s: got %v, want a KindInvalid *Error", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
	}
}

// TestMapKeyErrorsSayWhatTheKeyIs: a float or list key is named as such,
// not by its Go type: Python users see these errors through the C ABI.
func TestMapKeyErrorsSayWhatTheKeyIs(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{Map{{1.5, 1}}, "map key is a float"},
		{Map{{float32(1.5), 1}}, "map key is a float"},
		{Map{{Float16(0x3c00), 1}}, "map key is a float"},
		{Map{{[]any{}, 1}}, "map key is a list"},
		{Map{{map[string]any{}, 1}}, "map key is a map"},
	} {
		_, err := Marshal(c.in)
		if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "float64") {
			t.Errorf("%v: got %v, want %q", c.in, err, c.want)
		}
	}
	// A message with a float key: the decoder says so in the same words.
	_, err := Unmarshal(envelopeHex(t, "a1 f93c00 01"))
	if KindOf(err) != KindProtocol || !strings.Contains(err.Error(), "map key is a float") {
		t.Errorf("decoding a float key: %v", err)
	}
}
