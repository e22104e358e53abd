package wasm

import (
	"testing"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

// TestEncodeGoTypes: the Go types core encodes beyond the value model
// (core.Normalize) encode in the guest as in core, by reference too: a
// large typed slice is held as a view of the caller's memory.
func TestEncodeGoTypes(t *testing.T) {
	rt := newRuntime(t, Options{})
	w := make([]float32, 512)
	for i := range w {
		w[i] = float32(i)
	}
	v := map[string]any{
		"w":       w,
		"layers":  map[string][]float32{"fc": w[:300], "small": {1, 2}},
		"counts":  map[string]int{"a": 1},
		"ids":     []int{1, 2, 3},
		"names":   []string{"x", "y"},
		"by_rank": map[int]string{1: "a"},
	}
	got, _ := encodeBoth(t, rt, core.EncOptions{ByRef: true, RefThreshold: 1024, Source: "http://127.0.0.1:9"}, "gotypes", v)
	b := got.Batch()
	if b == nil || len(b.Items) != 2 {
		t.Fatalf("batch %v: want the two large slices", b)
	}
	for _, it := range b.Items {
		if unsafe.SliceData(it.Data) != (*byte)(unsafe.Pointer(&w[0])) {
			t.Fatalf("item %d is not a view of the caller's slice", it.ID)
		}
	}
}
