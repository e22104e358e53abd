// Package cbor holds the RFC 8949 mechanics the core builds on: item heads,
// their encoding in shortest form, and a bounds-checked reader that never
// trusts a declared length.
package cbor

import (
	"encoding/binary"
	"errors"
	"math"
)

// Major types (RFC 8949 §3.1).
const (
	MajorUint   = 0
	MajorNeg    = 1
	MajorBytes  = 2
	MajorText   = 3
	MajorArray  = 4
	MajorMap    = 5
	MajorTag    = 6
	MajorSimple = 7
)

// Simple values and float additional-information codes of major type 7.
const (
	SimpleFalse = 20
	SimpleTrue  = 21
	SimpleNull  = 22
	SimpleUndef = 23
	AIFloat16   = 25
	AIFloat32   = 26
	AIFloat64   = 27
	AIIndef     = 31
)

// AppendHead appends the head of an item of major type m with argument arg in
// its shortest form (RFC 8949 §4.2.1).
func AppendHead(dst []byte, m byte, arg uint64) []byte {
	if arg < 24 { // one byte, the commonest, appended inline
		return append(dst, m<<5|byte(arg))
	}
	return appendHead(dst, m, arg)
}

func appendHead(dst []byte, m byte, arg uint64) []byte {
	ib := m << 5
	switch {
	case arg < 24:
		return append(dst, ib|byte(arg))
	case arg <= math.MaxUint8:
		return append(dst, ib|24, byte(arg))
	case arg <= math.MaxUint16:
		return append(dst, ib|25, byte(arg>>8), byte(arg))
	case arg <= math.MaxUint32:
		return append(dst, ib|26, byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	default:
		return binary.BigEndian.AppendUint64(append(dst, ib|27), arg)
	}
}

// HeadLen returns the number of bytes AppendHead writes for arg.
func HeadLen(arg uint64) int {
	switch {
	case arg < 24:
		return 1
	case arg <= math.MaxUint8:
		return 2
	case arg <= math.MaxUint16:
		return 3
	case arg <= math.MaxUint32:
		return 5
	default:
		return 9
	}
}

// AppendFloat16 appends a half-precision float from its bits.
func AppendFloat16(dst []byte, bits uint16) []byte {
	return append(dst, MajorSimple<<5|AIFloat16, byte(bits>>8), byte(bits))
}

// AppendFloat32 appends a single-precision float.
func AppendFloat32(dst []byte, f float32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, MajorSimple<<5|AIFloat32), math.Float32bits(f))
}

// AppendFloat64 appends a double-precision float.
func AppendFloat64(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, MajorSimple<<5|AIFloat64), math.Float64bits(f))
}

// Errors returned by Reader; callers attach the offset.
var (
	ErrTruncated  = errors.New("unexpected end of data")
	ErrIndefinite = errors.New("indefinite-length items are not allowed")
	ErrBreak      = errors.New("break code outside an indefinite-length item")
	ErrReserved   = errors.New("reserved additional information value")
)

// Head is a decoded item head.
type Head struct {
	Major byte
	AI    byte   // additional information (low five bits of the initial byte)
	Arg   uint64 // argument; for major 7 floats, the raw bits
}

// Reader reads items from a byte slice. It never reads past the end and
// never allocates.
type Reader struct {
	Data []byte
	Off  int
}

// Remaining returns how many bytes are left after the current offset.
func (r *Reader) Remaining() int { return len(r.Data) - r.Off }

// ReadSmall reads the next head if it is of one byte (its argument is
// under 24), as ReadHead would, and reports whether it was: ReadHead's
// commonest case, which the compiler inlines into a caller's loop.
func (r *Reader) ReadSmall() (Head, bool) {
	if r.Off < len(r.Data) {
		if ib := r.Data[r.Off]; ib&0x1f < 24 {
			r.Off++
			return Head{Major: ib >> 5, AI: ib & 0x1f, Arg: uint64(ib & 0x1f)}, true
		}
	}
	return Head{}, false
}

// ReadHead4 reads the next head if its argument takes four bytes, as
// ReadHead would, and reports whether it did: the head of each of our
// own tags (0x5643....), which the compiler inlines into a caller.
func (r *Reader) ReadHead4() (h Head, ok bool) {
	if b := r.Data[r.Off:]; len(b) >= 5 && b[0]&0x1f == 26 { // Off never passes the end
		r.Off += 5
		return Head{b[0] >> 5, 26, uint64(binary.BigEndian.Uint32(b[1:]))}, true
	}
	return h, false
}

// ReadHead1 reads the next head if its argument takes one byte, as
// ReadHead would, and reports whether it did: the head of RFC 8746's
// tags, which the compiler inlines into a caller.
func (r *Reader) ReadHead1() (h Head, ok bool) {
	if b := r.Data[r.Off:]; len(b) >= 2 && b[0]&0x1f == 24 { // Off never passes the end
		r.Off += 2
		return Head{b[0] >> 5, 24, uint64(b[1])}, true
	}
	return h, false
}

// ReadHead reads one item head. Indefinite lengths and reserved values are
// errors.
func (r *Reader) ReadHead() (Head, error) {
	if r.Off >= len(r.Data) {
		return Head{}, ErrTruncated
	}
	ib := r.Data[r.Off]
	h := Head{Major: ib >> 5, AI: ib & 0x1f}
	var n int
	switch {
	case h.AI < 24:
		r.Off++
		h.Arg = uint64(h.AI)
		return h, nil
	case h.AI == 24:
		n = 1
	case h.AI == 25:
		n = 2
	case h.AI == 26:
		n = 4
	case h.AI == 27:
		n = 8
	case h.AI == AIIndef && h.Major == MajorSimple:
		return Head{}, ErrBreak
	case h.AI == AIIndef:
		return Head{}, ErrIndefinite
	default:
		return Head{}, ErrReserved
	}
	if len(r.Data)-r.Off-1 < n {
		return Head{}, ErrTruncated
	}
	b := r.Data[r.Off+1 : r.Off+1+n]
	switch n {
	case 1:
		h.Arg = uint64(b[0])
	case 2:
		h.Arg = uint64(binary.BigEndian.Uint16(b))
	case 4:
		h.Arg = uint64(binary.BigEndian.Uint32(b))
	case 8:
		h.Arg = binary.BigEndian.Uint64(b)
	}
	r.Off += 1 + n
	return h, nil
}

// ReadN returns the next n bytes, or ErrTruncated when fewer remain. The
// result aliases Data.
func (r *Reader) ReadN(n uint64) ([]byte, error) {
	if n > uint64(len(r.Data)-r.Off) {
		return nil, ErrTruncated
	}
	b := r.Data[r.Off : r.Off+int(n)]
	r.Off += int(n)
	return b, nil
}
