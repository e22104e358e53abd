package abi

import (
	"io"
	"math"

	"github.com/viacodec/viacodec/core"
)

// SlotBytes is the dtype code of a slot that holds a byte string rather
// than an array (core.DTypeInvalid, which no array has).
const SlotBytes = int32(core.DTypeInvalid)

// Slot is memory a foreign caller owns, holding one array or byte string:
// what it sends (Encode) or where a decoded slot lands (Fill, Fetch). The
// shell makes Data a view of that memory; nil means none (a destination
// to skip).
type Slot struct {
	Data  []byte
	DType int32 // a core.DType, or SlotBytes
	Order int32 // core.RowMajor or core.ColumnMajor
	Shape []int64
	// File, when set, reaches Data's bytes through a file that Data maps
	// (core.FetchItem.File): Fetch downloads through it.
	File io.WriterAt
	// Held marks an array whose bytes its caller keeps (a wasm guest's
	// host): the slot describes it and has no Data, and Encode sends it
	// by reference as a core.Extern whose Handle is the slot's index.
	Held bool
}

// value returns the *core.Array (or, for SlotBytes, the []byte) that views
// the slot's memory, or for a held slot the *core.Extern of index i. An
// array is built in *a, its shape appended to *dims: values allocates
// both once for all slots.
func (s Slot) value(i int, a *core.Array, dims *[]int) (any, error) {
	if s.Held {
		return s.extern(i, dims)
	}
	data := s.Data
	if data == nil {
		data = []byte{}
	}
	if s.DType == SlotBytes {
		if len(s.Shape) != 0 {
			return nil, Errorf(core.KindInvalid, "a byte-string slot (dtype 0) has %d dimensions, not 0", len(s.Shape))
		}
		return data, nil
	}
	if s.DType < 0 || s.DType > math.MaxUint8 || !core.DType(s.DType).Valid() {
		return nil, Errorf(core.KindMismatch, "invalid dtype %d", s.DType)
	}
	if s.Order != int32(core.RowMajor) && s.Order != int32(core.ColumnMajor) {
		return nil, Errorf(core.KindMismatch, "invalid order %d (0 is row-major, 1 column-major)", s.Order)
	}
	shape, err := s.shape(dims)
	if err != nil {
		return nil, err
	}
	*a = core.Array{DType: core.DType(s.DType), Shape: shape, Order: core.Order(s.Order), Data: data}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// shape appends the slot's shape to *dims and returns it.
func (s Slot) shape(dims *[]int) ([]int, error) {
	if len(s.Shape) > core.MaxDims {
		return nil, Errorf(core.KindInvalid, "%d dimensions, more than %d", len(s.Shape), core.MaxDims)
	}
	start := len(*dims)
	for i, n := range s.Shape {
		if n < 0 {
			return nil, Errorf(core.KindMismatch, "dimension %d is negative (%d)", i, n)
		}
		*dims = append(*dims, int(n))
	}
	return (*dims)[start:len(*dims):len(*dims)], nil
}

// extern returns the *core.Extern of held slot i, checked; its shape is
// appended to *dims.
func (s Slot) extern(i int, dims *[]int) (*core.Extern, error) {
	if len(s.Data) != 0 || s.DType == SlotBytes {
		return nil, Errorf(core.KindInvalid, "a held slot is an array without data")
	}
	if s.DType < 0 || s.DType > math.MaxUint8 || s.Order < 0 || s.Order > math.MaxUint8 {
		return nil, Errorf(core.KindMismatch, "invalid dtype %d or order %d", s.DType, s.Order)
	}
	shape, err := s.shape(dims)
	if err != nil {
		return nil, err
	}
	x := &core.Extern{DType: core.DType(s.DType), Shape: shape, Order: core.Order(s.Order), Handle: int64(i)}
	if _, err := x.Size(); err != nil {
		return nil, err
	}
	return x, nil
}

// values builds the views of all slots before anything is encoded, so that
// a bad descriptor fails the call early.
func values(slots []Slot) ([]any, error) {
	vals := make([]any, len(slots))
	arrays := make([]core.Array, len(slots))
	n := 0
	for _, s := range slots {
		n += min(len(s.Shape), core.MaxDims+1)
	}
	dims := make([]int, 0, n)
	for i, s := range slots {
		v, err := s.value(i, &arrays[i], &dims)
		if err != nil {
			return nil, Wrap(err, "slot %d", i)
		}
		vals[i] = v
	}
	return vals, nil
}

// SlotSpec describes a decoded slot, without its bytes: what the caller
// allocates before Fill or Fetch.
type SlotSpec struct {
	DType int32 // a core.DType, or SlotBytes
	Order int32
	Shape []int
	Bytes uint64
	Ref   bool // downloaded (Fetch), not copied from the message
}

// SlotOf returns the slot that views array a: its memory, dtype, order and
// shape, as a Go caller passes it to Encode.
func SlotOf(a *core.Array) Slot {
	s := Slot{Data: a.Data, DType: int32(a.DType), Order: int32(a.Order), Shape: make([]int64, len(a.Shape))}
	for i, n := range a.Shape {
		s.Shape[i] = int64(n)
	}
	return s
}

// Destinations allocates Go memory for every slot of specs, as a Go
// caller does before Fill or Fetch; each slot describes its array too,
// so that Encode can send it again.
func Destinations(specs []SlotSpec) []Slot {
	dsts := make([]Slot, len(specs))
	for i, s := range specs {
		dsts[i] = Slot{Data: make([]byte, s.Bytes), DType: s.DType, Order: s.Order, Shape: make([]int64, len(s.Shape))}
		for j, n := range s.Shape {
			dsts[i].Shape[j] = int64(n)
		}
	}
	return dsts
}
