package tensorfile

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/viacodec/viacodec/core"
)

// An .npy file (numpy's format.py, versions 1.0 to 3.0) is the magic
// "\x93NUMPY", a version, a header length (2 bytes in 1.0, 4 after), and a
// header that is a Python literal, padded with spaces and a newline:
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//
// then the elements.

const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header we read: version 1.0's own limit, far
// above the header of any dtype we read.
const maxNPYHeader = 1<<16 - 1

// npyDTypes maps .npy type codes (descr without its byte order) to dtypes.
var npyDTypes = []struct {
	code  string
	dtype core.DType
}{
	{"b1", core.DTypeBool},
	{"i1", core.DTypeInt8},
	{"u1", core.DTypeUint8},
	{"i2", core.DTypeInt16},
	{"u2", core.DTypeUint16},
	{"i4", core.DTypeInt32},
	{"u4", core.DTypeUint32},
	{"i8", core.DTypeInt64},
	{"u8", core.DTypeUint64},
	{"f2", core.DTypeFloat16},
	{"f4", core.DTypeFloat32},
	{"f8", core.DTypeFloat64},
	{"c8", core.DTypeComplex64},
	{"c16", core.DTypeComplex128},
}

// npyDescr returns the descr numpy writes for dt: "|" for one-byte types,
// "<" (little-endian) for the others.
func npyDescr(dt core.DType) (string, bool) {
	for _, d := range npyDTypes {
		if d.dtype == dt {
			if dt.Size() == 1 {
				return "|" + d.code, true
			}
			return "<" + d.code, true
		}
	}
	return "", false
}

type npyHeader struct {
	dtype     core.DType
	bigEndian bool
	order     core.Order
	shape     []int
}

// readNPYHeader reads an .npy file's magic, version and header from r and
// returns the header and how many bytes it took.
func readNPYHeader(r io.Reader) (npyHeader, int, error) {
	var prefix [10]byte
	if _, err := io.ReadFull(r, prefix[:8]); err != nil {
		return npyHeader{}, 0, wrap(core.KindSyntax, err, "npy: truncated before the header")
	}
	if string(prefix[:6]) != npyMagic {
		return npyHeader{}, 0, errorf(core.KindSyntax, "npy: no .npy magic")
	}
	major, minor := prefix[6], prefix[7]
	var n uint64
	size := 10
	switch major {
	case 1:
		if _, err := io.ReadFull(r, prefix[8:10]); err != nil {
			return npyHeader{}, 0, wrap(core.KindSyntax, err, "npy: truncated header length")
		}
		n = uint64(binary.LittleEndian.Uint16(prefix[8:10]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return npyHeader{}, 0, wrap(core.KindSyntax, err, "npy: truncated header length")
		}
		n = uint64(binary.LittleEndian.Uint32(b[:]))
		size = 12
	default:
		return npyHeader{}, 0, errorf(core.KindSyntax, "npy: version %d.%d is not one of 1.0, 2.0, 3.0", major, minor)
	}
	if n > maxNPYHeader {
		return npyHeader{}, 0, errorf(core.KindLimit, "npy: header of %d bytes exceeds the limit of %d", n, maxNPYHeader)
	}
	text := make([]byte, n)
	if _, err := io.ReadFull(r, text); err != nil {
		return npyHeader{}, 0, wrap(core.KindSyntax, err, "npy: header of %d bytes is truncated", n)
	}
	h, err := parseNPYHeader(string(text))
	if err != nil {
		return npyHeader{}, 0, err
	}
	return h, size + int(n), nil
}

// parseNPYHeader parses the header dict, as numpy writes it: exactly the
// keys descr, fortran_order and shape, in any order.
func parseNPYHeader(s string) (npyHeader, error) {
	p := pyLiteral{s: s}
	var h npyHeader
	var descr string
	seen := map[string]bool{}
	if !p.consume('{') {
		return h, p.fail("a dict")
	}
	for !p.consume('}') {
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return h, p.fail("'key': value")
		}
		if seen[key] {
			return h, errorf(core.KindSyntax, "npy: header has %q twice", key)
		}
		seen[key] = true
		switch key {
		case "descr":
			if p.peek() == '[' {
				return h, errorf(core.KindInvalid, "npy: structured dtypes are not supported")
			}
			if descr, ok = p.str(); !ok {
				return h, p.fail("a descr string")
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				h.order = core.ColumnMajor
			case p.word("False"):
				h.order = core.RowMajor
			default:
				return h, p.fail("True or False")
			}
		case "shape":
			shape, ok := p.tuple()
			if !ok {
				return h, p.fail("a tuple of integers")
			}
			h.shape = shape
		default:
			return h, errorf(core.KindSyntax, "npy: header has an unknown key %q", key)
		}
		if !p.consume(',') && p.peek() != '}' {
			return h, p.fail("',' or '}'")
		}
	}
	if strings.TrimRight(s[p.i:], " \n") != "" {
		return h, p.fail("the end of the header")
	}
	if len(seen) != 3 {
		return h, errorf(core.KindSyntax, "npy: header lacks descr, fortran_order or shape")
	}
	dt, big, err := parseDescr(descr)
	if err != nil {
		return h, err
	}
	h.dtype, h.bigEndian = dt, big
	return h, nil
}

// parseDescr reads a descr such as "<f4", ">i8" or "|b1".
func parseDescr(descr string) (core.DType, bool, error) {
	if len(descr) >= 2 {
		order, code := descr[0], descr[1:]
		for _, d := range npyDTypes {
			if d.code != code {
				continue
			}
			switch {
			case order == '<' || order == '|' && d.dtype.Size() == 1:
				return d.dtype, false, nil
			case order == '>':
				return d.dtype, d.dtype.Size() > 1, nil
			}
		}
	}
	return 0, false, errorf(core.KindInvalid, "npy: dtype %q is not supported (viacodec reads bool, int, uint, float16/32/64 and complex64/128; numpy saves bfloat16 and float8 as raw void, which loses their type)", descr)
}

// npyArray makes the array an .npy header describes over data, swapping a
// big-endian file's bytes into a copy.
func npyArray(h npyHeader, data []byte) (*core.Array, error) {
	if h.bigEndian {
		swapped := make([]byte, len(data))
		n := h.dtype.Size()
		if h.dtype == core.DTypeComplex64 || h.dtype == core.DTypeComplex128 {
			n /= 2 // each part on its own
		}
		for i := 0; i+n <= len(data); i += n {
			for j := range n {
				swapped[i+j] = data[i+n-1-j]
			}
		}
		data = swapped
	}
	a, err := core.NewArray(h.dtype, h.shape, h.order, data)
	if err != nil {
		return nil, wrap(core.KindOf(err), err, "npy")
	}
	return a, nil
}

// appendNPY appends the .npy header that numpy writes for a: version 1.0
// (2.0 for a header over 64 KiB), the dict with keys in sorted order,
// spaces for the shape to grow, and padding to a multiple of 64 bytes.
func appendNPYHeader(dst []byte, a *core.Array) ([]byte, bool) {
	descr, ok := npyDescr(a.DType)
	if !ok {
		return nil, false
	}
	fortran := a.Order == core.ColumnMajor && longDims(a.Shape) >= 2
	var d strings.Builder
	fmt.Fprintf(&d, "{'descr': '%s', 'fortran_order': %s, 'shape': (", descr, map[bool]string{false: "False", true: "True"}[fortran])
	for i, n := range a.Shape {
		if i > 0 {
			d.WriteString(", ")
		}
		d.WriteString(strconv.Itoa(n))
	}
	if len(a.Shape) == 1 {
		d.WriteByte(',')
	}
	d.WriteString("), }")
	if len(a.Shape) > 0 {
		grow := a.Shape[0]
		if fortran {
			grow = a.Shape[len(a.Shape)-1]
		}
		d.WriteString(strings.Repeat(" ", max(0, 21-len(strconv.Itoa(grow)))))
	}
	header := d.String()
	lenSize, major := 2, byte(1)
	hlen := len(header) + 1 // the newline
	pad := 64 - (8+lenSize+hlen)%64
	if hlen+pad > math.MaxUint16 {
		lenSize, major = 4, 2
		pad = 64 - (8+lenSize+hlen)%64
	}
	dst = append(dst, npyMagic...)
	dst = append(dst, major, 0)
	if major == 1 {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(hlen+pad))
	} else {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(hlen+pad))
	}
	dst = append(dst, header...)
	dst = append(dst, strings.Repeat(" ", pad)...)
	return append(dst, '\n'), true
}

// longDims counts the dimensions longer than 1: the order of an array
// with fewer than two of them does not change its bytes.
func longDims(shape []int) int {
	n := 0
	for _, d := range shape {
		if d > 1 {
			n++
		}
	}
	return n
}

// pyLiteral reads the few Python literals an .npy header holds.
type pyLiteral struct {
	s string
	i int
}

func (p *pyLiteral) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *pyLiteral) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyLiteral) consume(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *pyLiteral) word(w string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str reads a quoted string without escapes.
func (p *pyLiteral) str() (string, bool) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", false
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", false
	}
	p.i += end + 2
	return v, true
}

// tuple reads a tuple of non-negative integers: (), (3,), (2, 3).
func (p *pyLiteral) tuple() ([]int, bool) {
	if !p.consume('(') {
		return nil, false
	}
	shape := []int{}
	for !p.consume(')') {
		p.space()
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil || n > math.MaxInt {
			return nil, false
		}
		if p.i < len(p.s) && p.s[p.i] == 'L' { // written by Python 2
			p.i++
		}
		shape = append(shape, int(n))
		if !p.consume(',') && p.peek() != ')' {
			return nil, false
		}
	}
	return shape, true
}

func (p *pyLiteral) fail(want string) error {
	at := p.s[min(p.i, len(p.s)):]
	if len(at) > 24 {
		at = at[:24] + "…"
	}
	return errorf(core.KindSyntax, "npy: header: expected %s at byte %d, found %q", want, p.i, at)
}
