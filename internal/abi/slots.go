package abi

import (
	"math"

	"github.com/viacodec/viacodec/core"
)

// SlotBytes is the dtype code of a slot that holds a byte string rather
// than an array (core.DTypeInvalid, which no array has).
const SlotBytes = int32(core.DTypeInvalid)

// MaxDims bounds the dimensions of one slot, as numpy does.
const MaxDims = 64

// Slot is memory a foreign caller owns, holding one array or byte string:
// what it sends (Encode) or where a decoded slot lands (Fill, Fetch). The
// shell makes Data a view of that memory; nil means none (a destination
// to skip).
type Slot struct {
	Data  []byte
	DType int32 // a core.DType, or SlotBytes
	Order int32 // core.RowMajor or core.ColumnMajor
	Shape []int64
}

// value returns the *core.Array (or, for SlotBytes, the []byte) that views
// the slot's memory.
func (s Slot) value() (any, error) {
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
	if len(s.Shape) > MaxDims {
		return nil, Errorf(core.KindInvalid, "%d dimensions, more than %d", len(s.Shape), MaxDims)
	}
	shape := make([]int, len(s.Shape))
	for i, n := range s.Shape {
		if n < 0 {
			return nil, Errorf(core.KindMismatch, "dimension %d is negative (%d)", i, n)
		}
		shape[i] = int(n)
	}
	return core.NewArray(core.DType(s.DType), shape, core.Order(s.Order), data)
}

// values builds the views of all slots before anything is encoded, so that
// a bad descriptor fails the call early.
func values(slots []Slot) ([]any, error) {
	vals := make([]any, len(slots))
	for i, s := range slots {
		v, err := s.value()
		if err != nil {
			return nil, wrap(err, "slot %d", i)
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
