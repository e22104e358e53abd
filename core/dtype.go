package core

import "fmt"

// DType is the element type of an Array. Its names are those of numpy and
// ml_dtypes, so that a Python receiver can use them as they are.
type DType uint8

// The dtypes. DTypeInvalid (0) is the zero value and never valid.
const (
	DTypeInvalid DType = iota
	DTypeBool
	DTypeInt8
	DTypeInt16
	DTypeInt32
	DTypeInt64
	DTypeUint8
	DTypeUint16
	DTypeUint32
	DTypeUint64
	DTypeFloat16
	DTypeBFloat16
	DTypeFloat32
	DTypeFloat64
	DTypeComplex64
	DTypeComplex128
	DTypeFloat8E4M3FN
	DTypeFloat8E5M2
	dtypeCount
)

// Tag numbers of our own (docs/wire-format.md). The prefix 0x5643 spells "VC".
const (
	TagEnvelope = 0x56430000 // [version, body, batches]
	TagObject   = 0x56430001 // [name, data]: a registered type's decomposed form
	TagRef      = 0x56430002 // [batch, item, dtype, shape, order]: array by reference
	TagSlot     = 0x56430003 // uint: a slot of a binding's skeleton; never in a message

	tagBool       = 0x56430010 // one byte per element, 0 or 1
	tagBFloat16   = 0x56430011 // bfloat16, little-endian
	tagFloat8E4M3 = 0x56430012 // OCP float8 e4m3fn
	tagFloat8E5M2 = 0x56430013 // OCP float8 e5m2
	tagComplex64  = 0x56430014 // float32 pairs (real, imaginary), little-endian
	tagComplex128 = 0x56430015 // float64 pairs (real, imaginary), little-endian

	tagBignumPos   = 2
	tagBignumNeg   = 3
	tagArrayRow    = 40   // RFC 8746 multi-dimensional array, row-major
	tagArrayColumn = 1040 // RFC 8746 multi-dimensional array, column-major
)

type dtypeInfo struct {
	name string
	size int
	tag  uint64 // the little-endian typed-array tag we write
}

var dtypes = [dtypeCount]dtypeInfo{
	DTypeBool:         {"bool", 1, tagBool},
	DTypeInt8:         {"int8", 1, 72},
	DTypeInt16:        {"int16", 2, 77},
	DTypeInt32:        {"int32", 4, 78},
	DTypeInt64:        {"int64", 8, 79},
	DTypeUint8:        {"uint8", 1, 64},
	DTypeUint16:       {"uint16", 2, 69},
	DTypeUint32:       {"uint32", 4, 70},
	DTypeUint64:       {"uint64", 8, 71},
	DTypeFloat16:      {"float16", 2, 84},
	DTypeBFloat16:     {"bfloat16", 2, tagBFloat16},
	DTypeFloat32:      {"float32", 4, 85},
	DTypeFloat64:      {"float64", 8, 86},
	DTypeComplex64:    {"complex64", 8, tagComplex64},
	DTypeComplex128:   {"complex128", 16, tagComplex128},
	DTypeFloat8E4M3FN: {"float8_e4m3fn", 1, tagFloat8E4M3},
	DTypeFloat8E5M2:   {"float8_e5m2", 1, tagFloat8E5M2},
}

// Valid reports whether d is one of the defined dtypes.
func (d DType) Valid() bool { return d > DTypeInvalid && d < dtypeCount }

// Size returns the size of one element in bytes, or 0 for an invalid dtype.
func (d DType) Size() int {
	if !d.Valid() {
		return 0
	}
	return dtypes[d].size
}

// String returns the numpy name of d ("float32", "bfloat16", ...).
func (d DType) String() string {
	if !d.Valid() {
		return fmt.Sprintf("dtype(%d)", uint8(d))
	}
	return dtypes[d].name
}

// ParseDType returns the dtype with the given numpy name.
func ParseDType(name string) (DType, error) {
	if d := dtypeNamed([]byte(name)); d != DTypeInvalid {
		return d, nil
	}
	return DTypeInvalid, errorf(KindInvalid, "unknown dtype %q", name)
}

// dtypeNamed returns the dtype of name, DTypeInvalid for none. It
// compares names as numbers (dtypeKeys): a wasm guest would make a call
// per name compared.
func dtypeNamed(name []byte) DType {
	k, ok := dtypeKeyOf(name)
	if !ok {
		return DTypeInvalid
	}
	for d := DTypeBool; d < dtypeCount; d++ {
		if dtypeKeys[d] == k {
			return d
		}
	}
	return DTypeInvalid
}

// dtypeKey is a dtype name of up to 16 bytes as two little-endian words
// and its length.
type dtypeKey struct {
	lo, hi uint64
	n      int
}

var dtypeKeys = func() (keys [dtypeCount]dtypeKey) {
	for d := DTypeBool; d < dtypeCount; d++ {
		k, ok := dtypeKeyOf([]byte(dtypes[d].name))
		if !ok {
			panic("core: dtype name " + dtypes[d].name + " is longer than 16 bytes")
		}
		keys[d] = k
	}
	return keys
}()

func dtypeKeyOf(name []byte) (k dtypeKey, ok bool) {
	if len(name) == 0 || len(name) > 16 {
		return k, false
	}
	k.n = len(name)
	for i, c := range name {
		if i < 8 {
			k.lo |= uint64(c) << (8 * i)
		} else {
			k.hi |= uint64(c) << (8 * (i - 8))
		}
	}
	return k, true
}

// typedArrayTag describes what a typed-array tag holds.
type typedArrayTag struct {
	dtype     DType
	bigEndian bool
}

// lookupTypedArrayTag maps an RFC 8746 typed-array tag (64–87) or one of our
// extension tags to its dtype. ok is false for every other tag, including
// the typed arrays we have no dtype for (float128 83 and 87, reserved 76):
// isTypedArrayTag tells those apart.
func lookupTypedArrayTag(tag uint64) (t typedArrayTag, ok bool) {
	switch tag {
	case 64, 68: // uint8, uint8 clamped
		return typedArrayTag{DTypeUint8, false}, true
	case 65:
		return typedArrayTag{DTypeUint16, true}, true
	case 66:
		return typedArrayTag{DTypeUint32, true}, true
	case 67:
		return typedArrayTag{DTypeUint64, true}, true
	case 72:
		return typedArrayTag{DTypeInt8, false}, true
	case 73:
		return typedArrayTag{DTypeInt16, true}, true
	case 74:
		return typedArrayTag{DTypeInt32, true}, true
	case 75:
		return typedArrayTag{DTypeInt64, true}, true
	case 80:
		return typedArrayTag{DTypeFloat16, true}, true
	case 81:
		return typedArrayTag{DTypeFloat32, true}, true
	case 82:
		return typedArrayTag{DTypeFloat64, true}, true
	}
	for d := DTypeBool; d < dtypeCount; d++ {
		if dtypes[d].tag == tag {
			return typedArrayTag{d, false}, true
		}
	}
	return typedArrayTag{}, false
}

// isArrayTag reports whether tag's content is read as an array's data: a
// tag of RFC 8746's typed-array range or one of our typed-array tags.
// typedArray refuses those without a dtype.
func isArrayTag(tag uint64) bool {
	if isTypedArrayTag(tag) {
		return true
	}
	_, ok := lookupTypedArrayTag(tag)
	return ok
}

// isTypedArrayTag reports whether tag lies in RFC 8746's typed-array range.
func isTypedArrayTag(tag uint64) bool { return tag >= 64 && tag <= 87 }
