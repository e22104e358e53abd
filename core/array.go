package core

import (
	"math/bits"
	"unsafe"
)

// Order is the memory order of a multi-dimensional array.
type Order uint8

// Orders. RowMajor is C order, ColumnMajor is Fortran order.
const (
	RowMajor    Order = 0
	ColumnMajor Order = 1
)

// String returns "C" or "F", as numpy names the orders.
func (o Order) String() string {
	if o == ColumnMajor {
		return "F"
	}
	return "C"
}

// MaxDims is the most dimensions an array may have: numpy's limit, so that
// every build can hold what another accepts. Encoding or decoding an array
// or reference with more is a limit error (docs/wire-format.md §6.2).
const MaxDims = 64

// checkDims reports a shape of n dimensions, more than MaxDims, as a limit
// error at off (-1 when encoding). Every shape read or written is checked
// here, before anything is allocated from n.
func checkDims(n uint64, off int) error {
	if n > MaxDims {
		return errorAt(KindLimit, off, "an array of %d dimensions exceeds the maximum of %d", n, MaxDims)
	}
	return nil
}

// Array is a dense n-dimensional array. Data holds the elements in Order,
// little-endian, len(Data) == DType.Size() × product(Shape). A 0-d array
// (empty Shape) holds one element.
//
// An Array handed to Encode is read, never written or kept past the call,
// except by reference (see EncOptions.ByRef), where it stays a view until
// the transaction ends.
type Array struct {
	DType DType
	Shape []int
	Order Order
	Data  []byte
}

// NewArray returns an Array over data, checking that its length matches
// dtype and shape. The Array aliases data.
func NewArray(dtype DType, shape []int, order Order, data []byte) (*Array, error) {
	a := &Array{DType: dtype, Shape: shape, Order: order, Data: data}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// Validate checks dtype, order, shape and data length.
func (a *Array) Validate() error {
	if a == nil {
		return errorf(KindInvalid, "nil *Array")
	}
	if !a.DType.Valid() {
		return errorf(KindMismatch, "invalid dtype %d", uint8(a.DType))
	}
	if a.Order > ColumnMajor {
		return errorf(KindMismatch, "invalid order %d", uint8(a.Order))
	}
	n, err := ByteLen(a.DType, a.Shape)
	if err != nil {
		return err
	}
	if int64(len(a.Data)) != n {
		return errorf(KindMismatch, "%s shape %v needs %d bytes, data has %d", a.DType, a.Shape, n, len(a.Data))
	}
	if a.DType == DTypeBool {
		for i, b := range a.Data {
			if b > 1 {
				return errorf(KindMismatch, "bool element %d is %#x, not 0 or 1", i, b)
			}
		}
	}
	return nil
}

// Len returns the number of elements.
func (a *Array) Len() int { return len(a.Data) / a.DType.Size() }

// ByteLen returns the byte length of an array of dtype dt and shape:
// dt.Size() × the product of the dimensions. It fails on an invalid dtype
// or a negative dimension (kind mismatch), more than MaxDims dimensions
// (kind limit), or a length beyond the rule of docs/wire-format.md §6.3:
// the size times the product of the non-zero dimensions at most 2^62 bytes,
// even when another dimension is 0 (numpy's rule, kind mismatch).
func ByteLen(dt DType, shape []int) (int64, error) {
	if !dt.Valid() {
		return 0, errorf(KindMismatch, "invalid dtype %d", uint8(dt))
	}
	if err := checkDims(uint64(len(shape)), -1); err != nil {
		return 0, err
	}
	n, ok := byteLen(dt, shape)
	if !ok {
		return 0, errorf(KindMismatch, "shape %v of %s overflows", shape, dt)
	}
	return int64(n), nil
}

// byteLen returns size(dtype) × product(shape); ok is false on a negative
// dimension or when the product overflows int64.
func byteLen(dt DType, shape []int) (n uint64, ok bool) {
	// The rule of docs/wire-format.md §6.3, in any order of dimensions:
	// size × the product of the non-zero dimensions must not exceed 2^62
	// (numpy's rule too), and any zero dimension makes the array empty.
	// (Kept within the inliner's budget: a wasm guest pays a call per
	// reference otherwise.)
	n = uint64(dt.Size())
	nonEmpty := uint64(1) // 0 once a dimension is 0
	for _, d := range shape {
		if d == 0 {
			nonEmpty = 0
			continue
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if d < 0 || hi != 0 || lo > 1<<62 {
			return 0, false
		}
		n = lo
	}
	return n * nonEmpty, true
}

// Element is a Go type that an Array's elements can be viewed as.
type Element interface {
	bool | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 |
		Float16 | BFloat16 | float32 | float64 | complex64 | complex128 |
		Float8E4M3FN | Float8E5M2
}

// DTypeOf returns the dtype whose elements are E.
func DTypeOf[E Element]() DType {
	var z E
	switch any(z).(type) {
	case bool:
		return DTypeBool
	case int8:
		return DTypeInt8
	case int16:
		return DTypeInt16
	case int32:
		return DTypeInt32
	case int64:
		return DTypeInt64
	case uint8:
		return DTypeUint8
	case uint16:
		return DTypeUint16
	case uint32:
		return DTypeUint32
	case uint64:
		return DTypeUint64
	case Float16:
		return DTypeFloat16
	case BFloat16:
		return DTypeBFloat16
	case float32:
		return DTypeFloat32
	case float64:
		return DTypeFloat64
	case complex64:
		return DTypeComplex64
	case complex128:
		return DTypeComplex128
	case Float8E4M3FN:
		return DTypeFloat8E4M3FN
	default:
		return DTypeFloat8E5M2
	}
}

// ArrayOf returns an Array that views elems (no copy) with the given shape
// in row-major order; a nil shape means one dimension of len(elems).
func ArrayOf[E Element](shape []int, elems []E) (*Array, error) {
	if shape == nil {
		shape = []int{len(elems)}
	}
	var data []byte
	if len(elems) > 0 {
		data = unsafe.Slice((*byte)(unsafe.Pointer(&elems[0])), len(elems)*int(unsafe.Sizeof(elems[0])))
	}
	return NewArray(DTypeOf[E](), shape, RowMajor, data)
}

// Elements returns the elements of a as a []E. The result aliases a.Data
// when it is suitably aligned and a copy otherwise; mutate it only if you
// own a. E must match a.DType.
func Elements[E Element](a *Array) ([]E, error) {
	if a == nil {
		return nil, errorf(KindInvalid, "nil *Array")
	}
	if dt := DTypeOf[E](); dt != a.DType {
		return nil, errorf(KindMismatch, "array holds %s, not %s", a.DType, dt)
	}
	var z E
	size := int(unsafe.Sizeof(z))
	n := len(a.Data) / size
	if n == 0 {
		return []E{}, nil
	}
	if uintptr(unsafe.Pointer(&a.Data[0]))%unsafe.Alignof(z) == 0 {
		return unsafe.Slice((*E)(unsafe.Pointer(&a.Data[0])), n), nil
	}
	out := make([]E, n)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), n*size), a.Data)
	return out, nil
}
