package core

import (
	"context"
	"encoding/hex"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// ones returns a shape of n dimensions of 1.
func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// TestMaxDimsEncode: every way of writing a shape refuses more than
// MaxDims dimensions with a limit error, and MaxDims itself round-trips.
func TestMaxDimsEncode(t *testing.T) {
	one := []byte{0, 0, 0, 0}
	byRef := MustMode(EncOptions{ByRef: true, RefThreshold: 1, Source: "s"}.EncMode())
	inline := MustMode(EncOptions{}.EncMode())
	skel := MustMode(EncOptions{Slots: true}.EncMode())
	over := ones(MaxDims + 1)
	lazy := &LazyRef{Batch: goldenBatch("s", 1, 1, 4), DType: DTypeFloat32, Shape: over}
	for _, c := range []struct {
		name string
		mode *EncMode
		v    any
	}{
		{"inline", inline, &Array{DType: DTypeFloat32, Shape: over, Data: one}},
		{"by reference", byRef, &Array{DType: DTypeFloat32, Shape: over, Data: one}},
		{"in a skeleton", skel, &Array{DType: DTypeFloat32, Shape: over, Data: one}},
		{"extern", byRef, &Extern{DType: DTypeFloat32, Shape: over}},
		{"lazy ref", inline, lazy},
		{"lazy ref in a skeleton", skel, lazy},
	} {
		_, err := c.mode.Encode(c.v)
		if KindOf(err) != KindLimit || !strings.Contains(err.Error(), "65 dimensions") {
			t.Errorf("%s: got %v (kind %v), want a limit error naming 65 dimensions", c.name, err, KindOf(err))
		}
	}
	if _, err := NewArray(DTypeFloat32, over, RowMajor, one); KindOf(err) != KindLimit {
		t.Errorf("NewArray: got %v, want a limit error", err)
	}

	a := mustArray(t, DTypeFloat32, ones(MaxDims), RowMajor, one)
	data, err := Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if b := v.(*Array); len(b.Shape) != MaxDims {
		t.Fatalf("decoded %d dimensions, want %d", len(b.Shape), MaxDims)
	}
}

// TestMaxDimsSkeleton: writing a skeleton from a message and reading a
// binding's skeleton are held to the same limit, at the offset of the
// shape.
func TestMaxDimsSkeleton(t *testing.T) {
	msg := envelopeHex(t, "d828 82 9841"+strings.Repeat("01", 65)+"d855 44 00000000")
	// tag 0x56430103 [dtype float32 (12), shape, order 0, 4 bytes]
	b, err := hex.DecodeString(strings.ReplaceAll("da56430103 84 0c 9841"+strings.Repeat("01", 65)+"00 44 00000000", " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	skel := MustMode(DecOptions{Slots: true}.DecMode())
	for _, c := range []struct {
		name   string
		decode func() (bool, error) // whether a value came back
		off    int64
	}{
		{"skeleton of a message", func() (bool, error) { p, err := passThrough.Skeleton(msg, 0, 0, nil); return p != nil, err }, 10},
		{"reading a skeleton", func() (bool, error) { v, err := skel.Decode(b); return v != nil, err }, 7},
	} {
		v, err := c.decode()
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindLimit || e.Offset != c.off || v {
			t.Errorf("%s: got %v, %v; want a limit error at offset %d and no value", c.name, v, err, c.off)
		}
	}
}

// TestMaxDimsNoAllocation: a shape declaring 100,000 dimensions is refused
// from its head: the decoder never allocates a slice for them.
func TestMaxDimsNoAllocation(t *testing.T) {
	data := envelopeHex(t, "d828 82 9a000186a0"+strings.Repeat("00", 100000)+"d855 40")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Unmarshal(data)
	runtime.ReadMemStats(&after)
	if KindOf(err) != KindLimit {
		t.Fatalf("got %v, want a limit error", err)
	}
	// 100,000 ints would take 800,000 bytes.
	if n := after.TotalAlloc - before.TotalAlloc; n > 100_000 {
		t.Fatalf("decoding allocated %d bytes", n)
	}
}

// TestByteLen: the one rule for an array's byte length, which the wasm
// host's layouts and table use too.
func TestByteLen(t *testing.T) {
	for _, c := range []struct {
		dt    DType
		shape []int
		n     int64
		kind  Kind
	}{
		{DTypeFloat32, nil, 4, KindNone},
		{DTypeFloat32, []int{2, 3}, 24, KindNone},
		{DTypeComplex128, []int{0, 5}, 0, KindNone},
		{DTypeInt8, []int{1 << 62}, 1 << 62, KindNone},
		{DTypeInt16, []int{1 << 62}, 0, KindMismatch},
		{DTypeFloat64, []int{0, 1 << 62}, 0, KindMismatch}, // empty, but numpy's rule counts the other dimensions
		{DTypeInt8, []int{-1}, 0, KindMismatch},
		{DTypeInvalid, []int{1}, 0, KindMismatch},
		{DTypeInt8, ones(MaxDims), 1, KindNone},
		{DTypeInt8, ones(MaxDims + 1), 0, KindLimit},
	} {
		n, err := ByteLen(c.dt, c.shape)
		if KindOf(err) != c.kind || n != c.n {
			t.Errorf("ByteLen(%v, %v) = %d, %v; want %d, kind %v", c.dt, c.shape, n, err, c.n, c.kind)
		}
	}
}

type countingFetcher struct{ calls int }

func (f *countingFetcher) Fetch(context.Context, BatchRef, []FetchItem) error {
	f.calls++
	return nil
}

// TestMaxDimsResolve: a lazy ref made by hand with more than MaxDims
// dimensions is refused before anything is allocated or fetched.
func TestMaxDimsResolve(t *testing.T) {
	f := &countingFetcher{}
	dm := MustMode(DecOptions{Fetcher: f}.DecMode())
	l := &LazyRef{Batch: goldenBatch("s", 1, 1, 4), DType: DTypeFloat32, Shape: ones(MaxDims + 1)}
	_, err := dm.Resolve(context.Background(), l)
	if KindOf(err) != KindLimit || f.calls != 0 {
		t.Fatalf("got %v after %d fetches, want a limit error and none", err, f.calls)
	}
}
