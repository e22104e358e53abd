package core

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/viacodec/viacodec/core/internal/cbor"
	"github.com/viacodec/viacodec/core/internal/fp"
)

// DiagOptions configures Diagnose. The zero value writes one line and
// shortens array payloads, long byte strings and capability tokens.
type DiagOptions struct {
	// Width is the column a line should not pass: a list or map whose
	// one-line form would pass it gets one entry per line, indented by two
	// spaces per level. 0 writes everything on one line.
	Width int
	// Full writes every byte string whole, tokens and array payloads
	// included, and no comments: plain diagnostic notation.
	Full bool
}

// Byte strings longer than diagLongBytes show their first diagShownBytes
// bytes only (unless DiagOptions.Full).
const (
	diagLongBytes  = 64
	diagShownBytes = 16
	diagTokenBytes = 2
)

// Diagnose returns the CBOR item in data in diagnostic notation (RFC 8949
// §8, with comments as in RFC 8610 Appendix G): integers and bignums as
// numbers, floats with their width as an encoding indicator (1.5_2 is a
// float32), text strings as UTF-8 with JSON escapes for control and
// non-printing characters.
//
// Unless opts.Full, it shortens what a reader of a viacodec message does
// not need to see:
//
//   - a typed array's payload is elided and a comment gives its dtype and
//     byte count: 40([[2, 2], 85(h'…' / float32, 16 bytes /)]);
//   - a ref node is followed by a comment with its byte count;
//   - a byte string longer than 64 bytes shows its first 16 bytes and a
//     comment with its length;
//   - a batch descriptor's capability token shows its first two bytes
//     only: h'a0a1…'.
//
// Diagnose checks that data is one well-formed item (syntax errors carry
// the offset) nested at most DefaultMaxDepth deep below the envelope; it
// does not check the viacodec grammar, which Decode does.
func Diagnose(data []byte, opts DiagOptions) (string, error) {
	if opts.Width < 0 {
		return "", errorf(KindInvalid, "DiagOptions.Width %d is negative", opts.Width)
	}
	b := diagBuilder{r: cbor.Reader{Data: data}, full: opts.Full}
	root, err := b.item(0, roleNone)
	if err != nil {
		return "", err
	}
	if b.r.Off != len(data) {
		return "", errorAt(KindSyntax, b.r.Off, "%d bytes of trailing data", len(data)-b.r.Off)
	}
	w := diagWriter{width: opts.Width}
	w.render(root, 0, 0, 0)
	return w.b.String(), nil
}

type diagKind uint8

const (
	diagScalar diagKind = iota
	diagList
	diagMap
	diagTag
)

// diagNode is one item's notation, measured so that the writer can decide
// where to break lines.
type diagNode struct {
	kind    diagKind
	text    string      // a scalar's notation, or a tag's "40("
	comment string      // written after the item as " / comment /"
	items   []*diagNode // list items; map keys and values alternating; a tag's content
	width   int         // columns of the one-line form, comment included

	// What a parent reads back (ref nodes).
	uint   uint64
	isUint bool
	str    string
	isText bool
}

// diagRole marks where an item sits in a viacodec envelope, so that the
// builder can find the capability tokens.
type diagRole uint8

const (
	roleNone     diagRole = iota
	roleEnvelope          // the envelope's [version, body, batches]
	roleBatches           // the batch table
	roleBatch             // one batch descriptor
	roleToken             // a descriptor's token
)

type diagBuilder struct {
	r    cbor.Reader
	full bool
}

func (b *diagBuilder) item(depth int, role diagRole) (*diagNode, error) {
	off := b.r.Off
	h, err := b.r.ReadHead()
	if err != nil {
		return nil, errorAt(KindSyntax, off, "%v", err)
	}
	switch h.Major {
	case cbor.MajorUint:
		return measured(&diagNode{text: strconv.FormatUint(h.Arg, 10), uint: h.Arg, isUint: true}), nil
	case cbor.MajorNeg:
		if h.Arg <= math.MaxInt64 {
			return measured(&diagNode{text: strconv.FormatInt(-1-int64(h.Arg), 10)}), nil
		}
		n := new(big.Int).SetUint64(h.Arg)
		return measured(&diagNode{text: n.Not(n).String()}), nil
	case cbor.MajorBytes:
		p, err := b.content(h, off)
		if err != nil {
			return nil, err
		}
		return b.byteString(p, role), nil
	case cbor.MajorText:
		p, err := b.content(h, off)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(p) {
			return nil, errorAt(KindSyntax, off, "text string is not valid UTF-8")
		}
		return measured(&diagNode{text: string(appendQuoted(nil, string(p))), str: string(p), isText: true}), nil
	case cbor.MajorArray, cbor.MajorMap:
		return b.container(h, off, depth, role)
	case cbor.MajorTag:
		if err := checkDiagDepth(depth, off); err != nil {
			return nil, err
		}
		return b.tag(h.Arg, depth)
	default:
		return simpleNode(h, off)
	}
}

// content reads a string's bytes.
func (b *diagBuilder) content(h cbor.Head, off int) ([]byte, error) {
	p, err := b.r.ReadN(h.Arg)
	if err != nil {
		return nil, errorAt(KindSyntax, off, "string of %d bytes but only %d bytes remain", h.Arg, b.r.Remaining())
	}
	return p, nil
}

// checkDiagDepth allows the envelope's tag and list (depths 0 and 1) and
// DefaultMaxDepth levels below them, as the decoder does by default.
func checkDiagDepth(depth, off int) error {
	if depth >= DefaultMaxDepth+2 {
		return errorAt(KindLimit, off, "nesting exceeds MaxDepth %d", DefaultMaxDepth)
	}
	return nil
}

func (b *diagBuilder) container(h cbor.Head, off, depth int, role diagRole) (*diagNode, error) {
	if err := checkDiagDepth(depth, off); err != nil {
		return nil, err
	}
	n := &diagNode{kind: diagList}
	count := h.Arg
	if h.Major == cbor.MajorMap {
		n.kind = diagMap
		if count > math.MaxUint64/2 {
			return nil, errorAt(KindSyntax, off, "map of %d pairs but only %d bytes remain", count, b.r.Remaining())
		}
		count *= 2
	}
	// Every item takes at least one byte: check before reading, and never
	// size anything from the declared count.
	if count > uint64(b.r.Remaining()) {
		return nil, errorAt(KindSyntax, off, "%d items declared but only %d bytes remain", count, b.r.Remaining())
	}
	for i := range count {
		child, err := b.item(depth+1, childRole(role, n.kind, h.Arg, i))
		if err != nil {
			return nil, err
		}
		n.items = append(n.items, child)
	}
	n.measure()
	return n, nil
}

// childRole gives the role of item i of a container whose own role is
// role: the envelope's third item is the batch table, each of its items a
// descriptor, and a descriptor's third item its token.
func childRole(role diagRole, kind diagKind, count, i uint64) diagRole {
	if kind != diagList {
		return roleNone
	}
	switch {
	case role == roleEnvelope && count == 3 && i == 2:
		return roleBatches
	case role == roleBatches:
		return roleBatch
	case role == roleBatch && i == 2:
		return roleToken
	}
	return roleNone
}

func (b *diagBuilder) tag(tag uint64, depth int) (*diagNode, error) {
	// A typed array or bignum around a byte string is one scalar.
	peek := b.r
	if h, err := peek.ReadHead(); err == nil && h.Major == cbor.MajorBytes {
		ta, isArray := lookupTypedArrayTag(tag)
		isBignum := tag == tagBignumPos || tag == tagBignumNeg
		if isArray && !b.full || isBignum {
			off := b.r.Off
			b.r = peek
			p, err := b.content(h, off)
			if err != nil {
				return nil, err
			}
			if isBignum {
				v := new(big.Int).SetBytes(p)
				if tag == tagBignumNeg {
					v.Not(v)
				}
				return measured(&diagNode{text: v.String()}), nil
			}
			n := &diagNode{text: strconv.FormatUint(tag, 10) + "(" + elide(p, 0) + ")"}
			n.comment = fmt.Sprintf("%s, %d bytes", ta.dtype, len(p))
			if ta.bigEndian {
				n.comment = fmt.Sprintf("%s big-endian, %d bytes", ta.dtype, len(p))
			}
			return measured(n), nil
		}
	}
	role := roleNone
	if tag == TagEnvelope && depth == 0 {
		role = roleEnvelope
	}
	child, err := b.item(depth+1, role)
	if err != nil {
		return nil, err
	}
	n := &diagNode{kind: diagTag, text: strconv.FormatUint(tag, 10) + "(", items: []*diagNode{child}}
	if tag == TagRef && !b.full {
		if size, ok := refNodeBytes(child); ok {
			n.comment = fmt.Sprintf("%d bytes", size)
		}
	}
	n.measure()
	return n, nil
}

// refNodeBytes returns the byte length that a ref node's content
// [batch, item, dtype, shape, order] describes.
func refNodeBytes(n *diagNode) (uint64, bool) {
	if n.kind != diagList || len(n.items) != 5 || !n.items[2].isText || n.items[3].kind != diagList {
		return 0, false
	}
	dt, err := ParseDType(n.items[2].str)
	if err != nil {
		return 0, false
	}
	shape := make([]int, len(n.items[3].items))
	for i, d := range n.items[3].items {
		if !d.isUint || d.uint > math.MaxInt64 {
			return 0, false
		}
		shape[i] = int(d.uint)
	}
	return byteLen(dt, shape)
}

func (b *diagBuilder) byteString(p []byte, role diagRole) *diagNode {
	switch {
	case b.full:
		return measured(&diagNode{text: "h'" + hex.EncodeToString(p) + "'"})
	case role == roleToken:
		return measured(&diagNode{text: elide(p, diagTokenBytes)})
	case len(p) > diagLongBytes:
		return measured(&diagNode{text: elide(p, diagShownBytes), comment: fmt.Sprintf("%d bytes", len(p))})
	}
	return measured(&diagNode{text: "h'" + hex.EncodeToString(p) + "'"})
}

// elide writes the first keep bytes of p in hex, then "…" if p is longer.
func elide(p []byte, keep int) string {
	if len(p) <= keep {
		return "h'" + hex.EncodeToString(p) + "'"
	}
	return "h'" + hex.EncodeToString(p[:keep]) + "…'"
}

func simpleNode(h cbor.Head, off int) (*diagNode, error) {
	var s string
	switch {
	case h.AI == cbor.SimpleFalse:
		s = "false"
	case h.AI == cbor.SimpleTrue:
		s = "true"
	case h.AI == cbor.SimpleNull:
		s = "null"
	case h.AI == cbor.SimpleUndef:
		s = "undefined"
	case h.AI == cbor.AIFloat16:
		s = formatFloat(fp.F16ToF64(uint16(h.Arg)), "_1")
	case h.AI == cbor.AIFloat32:
		s = formatFloat(float64(math.Float32frombits(uint32(h.Arg))), "_2")
	case h.AI == cbor.AIFloat64:
		s = formatFloat(math.Float64frombits(h.Arg), "_3")
	case h.AI == 24 && h.Arg < 32:
		return nil, errorAt(KindSyntax, off, "simple value %d in two-byte form", h.Arg)
	default:
		s = "simple(" + strconv.FormatUint(h.Arg, 10) + ")"
	}
	return measured(&diagNode{text: s}), nil
}

// formatFloat writes f as RFC 8949 Appendix A does: the shortest decimal
// that reads back exactly, always with a decimal point, in exponent form
// below 1e-6 and from 1e21 on (1.0e+300, 1.0e-7); then the width indicator.
func formatFloat(f float64, indicator string) string {
	switch {
	case math.IsNaN(f):
		return "NaN" + indicator
	case math.IsInf(f, 1):
		return "Infinity" + indicator
	case math.IsInf(f, -1):
		return "-Infinity" + indicator
	}
	var s string
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		s = strconv.FormatFloat(f, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		digits := strings.TrimLeft(exp[1:], "0") // e-07 → e-7
		s = mant + "e" + exp[:1] + digits
	} else {
		s = strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
	}
	return s + indicator
}

// appendQuoted writes s, valid UTF-8, as a JSON string: quote, backslash,
// tab, newline and carriage return escaped by name, other control and
// non-printing characters as \uXXXX (UTF-16).
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\t':
			dst = append(dst, `\t`...)
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r < 0x20 || r == 0x7f || !strconv.IsPrint(r):
			if r >= 0x10000 {
				r -= 0x10000
				dst = fmt.Appendf(dst, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				dst = fmt.Appendf(dst, `\u%04x`, r)
			}
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}

func measured(n *diagNode) *diagNode {
	n.measure()
	return n
}

// measure sets n.width from its children's.
func (n *diagNode) measure() {
	w := utf8.RuneCountInString(n.text)
	switch n.kind {
	case diagList, diagMap:
		w = 2
		for _, c := range n.items {
			w += c.width
		}
		if k := len(n.items); k > 0 {
			if n.kind == diagMap {
				w += k / 2 * 2 // ": "
				k /= 2
			}
			w += 2 * (k - 1) // ", "
		}
	case diagTag:
		w += n.items[0].width + 1
	}
	if n.comment != "" {
		w += len(" /  /") + utf8.RuneCountInString(n.comment)
	}
	n.width = w
}

type diagWriter struct {
	b     strings.Builder
	width int
}

// render writes n starting at column col; tail columns follow it on the
// same line. Items that fit stay on one line.
func (w *diagWriter) render(n *diagNode, indent, col, tail int) {
	if w.width == 0 || col+n.width+tail <= w.width || n.kind == diagScalar {
		w.flat(n)
		return
	}
	switch n.kind {
	case diagList, diagMap:
		if len(n.items) == 0 {
			w.flat(n)
			return
		}
		open, close, step := byte('['), byte(']'), 1
		if n.kind == diagMap {
			open, close, step = '{', '}', 2
		}
		w.b.WriteByte(open)
		for i := 0; i < len(n.items); i += step {
			w.newline(indent + 2)
			last := i+step >= len(n.items)
			t := 1 // the comma
			if last {
				t = 0
			}
			if n.kind == diagMap {
				w.flat(n.items[i])
				w.b.WriteString(": ")
				w.render(n.items[i+1], indent+2, indent+2+n.items[i].width+2, t)
			} else {
				w.render(n.items[i], indent+2, indent+2, t)
			}
			if !last {
				w.b.WriteByte(',')
			}
		}
		w.newline(indent)
		w.b.WriteByte(close)
	case diagTag:
		w.b.WriteString(n.text)
		w.render(n.items[0], indent, col+utf8.RuneCountInString(n.text), tail+1+w.commentWidth(n))
		w.b.WriteByte(')')
	}
	w.comment(n)
}

func (w *diagWriter) commentWidth(n *diagNode) int {
	if n.comment == "" {
		return 0
	}
	return len(" /  /") + utf8.RuneCountInString(n.comment)
}

// flat writes n on one line.
func (w *diagWriter) flat(n *diagNode) {
	switch n.kind {
	case diagScalar:
		w.b.WriteString(n.text)
	case diagList, diagMap:
		open, close := byte('['), byte(']')
		if n.kind == diagMap {
			open, close = '{', '}'
		}
		w.b.WriteByte(open)
		for i, c := range n.items {
			switch {
			case i == 0:
			case n.kind == diagMap && i%2 == 1:
				w.b.WriteString(": ")
			default:
				w.b.WriteString(", ")
			}
			w.flat(c)
		}
		w.b.WriteByte(close)
	case diagTag:
		w.b.WriteString(n.text)
		w.flat(n.items[0])
		w.b.WriteByte(')')
	}
	w.comment(n)
}

func (w *diagWriter) comment(n *diagNode) {
	if n.comment != "" {
		w.b.WriteString(" / ")
		w.b.WriteString(n.comment)
		w.b.WriteString(" /")
	}
}

func (w *diagWriter) newline(indent int) {
	w.b.WriteByte('\n')
	for range indent {
		w.b.WriteByte(' ')
	}
}
