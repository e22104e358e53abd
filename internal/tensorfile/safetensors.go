package tensorfile

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/viacodec/viacodec/core"
)

// A safetensors file is an 8-byte little-endian header length N, N bytes
// of JSON header, and the byte buffer the header indexes:
//
//	{"__metadata__": {"k": "v"}, "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
//
// Offsets are relative to the buffer, whose bytes every tensor covers
// exactly once, without holes.

// maxSafetensorsHeader is the header limit of the safetensors library.
const maxSafetensorsHeader = 100_000_000

// safetensorsDTypes lists the dtypes in the safetensors library's order,
// by alignment; its writer puts the tensors of later dtypes first.
var safetensorsDTypes = []struct {
	name  string
	dtype core.DType
}{
	{"BOOL", core.DTypeBool},
	{"U8", core.DTypeUint8},
	{"I8", core.DTypeInt8},
	{"F8_E5M2", core.DTypeFloat8E5M2},
	{"F8_E4M3", core.DTypeFloat8E4M3FN},
	{"I16", core.DTypeInt16},
	{"U16", core.DTypeUint16},
	{"F16", core.DTypeFloat16},
	{"BF16", core.DTypeBFloat16},
	{"I32", core.DTypeInt32},
	{"U32", core.DTypeUint32},
	{"F32", core.DTypeFloat32},
	{"C64", core.DTypeComplex64},
	{"F64", core.DTypeFloat64},
	{"I64", core.DTypeInt64},
	{"U64", core.DTypeUint64},
}

// safetensorsRank returns a dtype's safetensors name and its place in
// safetensorsDTypes; ok is false for a dtype safetensors cannot carry.
func safetensorsRank(dt core.DType) (name string, rank int, ok bool) {
	for i, d := range safetensorsDTypes {
		if d.dtype == dt {
			return d.name, i, true
		}
	}
	return "", 0, false
}

type safetensorsInfo struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

func readSafetensors(data []byte) (*File, error) {
	// Data whose first bytes cannot begin a safetensors file is "not a
	// safetensors file", rather than what those bytes would mean in one.
	if len(data) < 8 {
		return nil, errorf(core.KindSyntax, "not a safetensors file (%d bytes, fewer than the 8 of its header length)", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		return nil, errorf(core.KindSyntax, "not a safetensors file (its first 8 bytes give a header of %d bytes, and %d bytes follow)", n, len(data)-8)
	}
	if n > maxSafetensorsHeader {
		return nil, errorf(core.KindLimit, "safetensors: header of %d bytes exceeds the limit of %d", n, maxSafetensorsHeader)
	}
	header, buf := data[8:8+n], data[8+n:]
	if !isJSONObject(header) {
		return nil, errorf(core.KindSyntax, "not a safetensors file (its header is not a JSON object)")
	}
	if !utf8.Valid(header) {
		return nil, errorf(core.KindSyntax, "safetensors: header is not valid UTF-8")
	}
	f := &File{}
	type entry struct {
		name string
		info safetensorsInfo
	}
	var entries []entry
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, headerError(err, "not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, headerError(err, "")
		}
		name := tok.(string) // object keys are strings
		if seen[name] {
			return nil, errorf(core.KindSyntax, "safetensors: header names %q twice", name)
		}
		seen[name] = true
		if name == MetadataKey {
			if err := dec.Decode(&f.Metadata); err != nil || f.Metadata == nil {
				return nil, headerError(err, fmt.Sprintf("%s is not a map of text to text", MetadataKey))
			}
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, headerError(err, "")
		}
		var info safetensorsInfo
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&info); err != nil || info.DType == "" || info.Shape == nil || len(info.DataOffsets) != 2 {
			return nil, headerError(err, fmt.Sprintf("tensor %q is not {dtype, shape, data_offsets: [begin, end]}", name))
		}
		entries = append(entries, entry{name, info})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, headerError(err, "")
	}
	if rest := bytes.TrimLeft(header[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, errorf(core.KindSyntax, "safetensors: %d bytes after the header's JSON object", len(rest))
	}

	// Every byte of the buffer belongs to exactly one tensor.
	slices.SortStableFunc(entries, func(a, b entry) int { return cmp.Compare(a.info.DataOffsets[0], b.info.DataOffsets[0]) })
	var end uint64
	for _, e := range entries {
		begin, stop := e.info.DataOffsets[0], e.info.DataOffsets[1]
		if begin != end || stop < begin || stop > uint64(len(buf)) {
			return nil, errorf(core.KindSyntax, "safetensors: tensor %q has data offsets [%d, %d]; the next tensor must start at %d and end within the %d-byte buffer", e.name, begin, stop, end, len(buf))
		}
		end = stop
		dt, ok := safetensorsDType(e.info.DType)
		if !ok {
			return nil, errorf(core.KindInvalid, "safetensors: tensor %q has dtype %s, which viacodec has no dtype for", e.name, e.info.DType)
		}
		shape := make([]int, len(e.info.Shape))
		for i, d := range e.info.Shape {
			if d < 0 || d > math.MaxInt {
				return nil, errorf(core.KindSyntax, "safetensors: tensor %q has dimension %d", e.name, d)
			}
			shape[i] = int(d)
		}
		a, err := core.NewArray(dt, shape, core.RowMajor, buf[begin:stop:stop])
		if err != nil {
			return nil, wrap(core.KindOf(err), err, "safetensors: tensor %q", e.name)
		}
		f.Tensors = append(f.Tensors, Tensor{Name: e.name, Array: a})
	}
	if end != uint64(len(buf)) {
		return nil, errorf(core.KindSyntax, "safetensors: the tensors cover %d bytes of the %d-byte buffer", end, len(buf))
	}
	return f, nil
}

func safetensorsDType(name string) (core.DType, bool) {
	for _, d := range safetensorsDTypes {
		if d.name == name {
			return d.dtype, true
		}
	}
	return core.DTypeInvalid, false
}

// isJSONObject reports whether a header starts as a JSON object does:
// "{" after any white space.
func isJSONObject(header []byte) bool {
	header = bytes.TrimLeft(header, " \t\r\n")
	return len(header) > 0 && header[0] == '{'
}

func headerError(err error, what string) error {
	if what == "" {
		what = "not valid JSON"
	}
	if err == nil || errors.Is(err, io.EOF) {
		return errorf(core.KindSyntax, "safetensors: header: %s", what)
	}
	return wrap(core.KindSyntax, err, "safetensors: header: %s", what)
}

// writeSafetensors writes the layout of the safetensors library: tensors
// ordered by dtype (widest alignment first), then name; header padded
// with spaces to a multiple of 8 bytes, so that every tensor is aligned.
// Metadata keys are sorted. Column-major arrays are written row-major.
func writeSafetensors(w io.Writer, f *File) error {
	for _, t := range f.Tensors {
		if _, _, ok := safetensorsRank(t.Array.DType); !ok {
			return errorf(core.KindInvalid, "safetensors cannot carry %s (tensor %q)", t.Array.DType, t.Name)
		}
	}
	specs := make([]Spec, len(f.Tensors))
	for i, t := range f.Tensors {
		// Written row-major: the shape as it is.
		specs[i] = Spec{Name: t.Name, DType: t.Array.DType, Shape: t.Array.Shape, Bytes: int64(len(t.Array.Data))}
	}
	header, offsets, err := SafetensorsLayout(specs, f.Metadata)
	if err != nil {
		return err
	}
	order := make([]int, len(specs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(offsets[a], offsets[b]) })
	if err := writeAll(w, header); err != nil {
		return err
	}
	for _, i := range order {
		if err := writeAll(w, rowMajor(f.Tensors[i].Array)); err != nil {
			return err
		}
	}
	return nil
}

// Spec describes one tensor of a safetensors file before its bytes
// exist: what SafetensorsLayout needs to place it.
type Spec struct {
	Name  string
	DType core.DType
	Shape []int
	Order core.Order // a column-major tensor is described as below
	Bytes int64
}

// OffloadKey prefixes the __metadata__ entry that describes a tensor
// whose bytes safetensors cannot describe as they are: a dtype it has no
// name for (described as U8 of its byte length), or column-major
// elements (described with the shape reversed, which is the transpose
// those bytes hold in row-major order). The entry's value is JSON:
// {"dtype":"complex128","shape":[2,3],"order":"F"} (order C or F).
const OffloadKey = "viacodec:"

// SafetensorsLayout returns the start of a safetensors file that holds
// the tensors (its 8-byte length, then its JSON header, padded with
// spaces to a multiple of 8), and the offset in the file at which each
// tensor's bytes begin, in the order given. The tensors are laid out as
// the safetensors library does: by dtype (widest alignment first), then
// by name, so each is aligned to its element size. A tensor safetensors
// cannot describe as it is gets an OffloadKey entry in the metadata.
func SafetensorsLayout(specs []Spec, metadata map[string]string) (header []byte, offsets []int64, err error) {
	type entry struct {
		spec  int
		dtype string
		shape []int
		rank  int
	}
	entries := make([]entry, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	var extra map[string]string // the OffloadKey entries
	for i, t := range specs {
		if t.Name == MetadataKey {
			return nil, nil, errorf(core.KindInvalid, "safetensors: a tensor cannot be named %q", MetadataKey)
		}
		if !utf8.ValidString(t.Name) {
			return nil, nil, errorf(core.KindInvalid, "safetensors: tensor name %q is not valid UTF-8", t.Name)
		}
		if seen[t.Name] {
			return nil, nil, errorf(core.KindInvalid, "safetensors: two tensors named %q", t.Name)
		}
		seen[t.Name] = true
		e := entry{spec: i, shape: t.Shape}
		name, rank, ok := safetensorsRank(t.DType)
		e.dtype, e.rank = name, rank
		switch {
		case !ok:
			e.dtype, e.rank, e.shape = "U8", 1, []int{int(t.Bytes)}
		case t.Order == core.ColumnMajor && longDims(t.Shape) > 1:
			e.shape = slices.Clone(t.Shape)
			slices.Reverse(e.shape)
		}
		if !ok || !slices.Equal(e.shape, t.Shape) {
			desc, _ := json.Marshal(struct {
				DType string `json:"dtype"`
				Shape []int  `json:"shape"`
				Order string `json:"order"`
			}{t.DType.String(), t.Shape, t.Order.String()})
			if extra == nil {
				extra = map[string]string{}
			}
			extra[OffloadKey+t.Name] = string(desc)
		}
		entries = append(entries, e)
	}
	if extra != nil {
		metadata = maps.Clone(metadata)
		if metadata == nil {
			metadata = extra
		}
		maps.Copy(metadata, extra)
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, errorf(core.KindInvalid, "safetensors: metadata %q is not valid UTF-8", k)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(b.rank, a.rank), cmp.Compare(specs[a.spec].Name, specs[b.spec].Name))
	})

	h := []byte{'{'}
	if metadata != nil {
		h = appendJSONString(h, MetadataKey)
		h = append(h, ":{"...)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendJSONString(h, k)
			h = append(h, ':')
			h = appendJSONString(h, metadata[k])
		}
		h = append(h, '}')
	}
	offsets = make([]int64, len(specs))
	var off int64
	for i, e := range entries {
		if i > 0 || metadata != nil {
			h = append(h, ',')
		}
		h = appendJSONString(h, specs[e.spec].Name)
		h = append(h, `:{"dtype":"`...)
		h = append(h, e.dtype...)
		h = append(h, `","shape":[`...)
		for j, d := range e.shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, int64(d), 10)
		}
		n := specs[e.spec].Bytes
		h = fmt.Appendf(h, `],"data_offsets":[%d,%d]}`, off, off+n)
		offsets[e.spec] = off
		off += n
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if len(h) > maxSafetensorsHeader {
		return nil, nil, errorf(core.KindLimit, "safetensors: header of %d bytes exceeds the limit of %d", len(h), maxSafetensorsHeader)
	}
	start := int64(8 + len(h))
	for i := range offsets {
		offsets[i] += start
	}
	return append(binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(h)), uint64(len(h))), h...), offsets, nil
}

// appendJSONString quotes s as serde_json does (the safetensors library's
// JSON writer): quote, backslash and control characters escaped, the rest
// as it is.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			if c < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '"')
}

func writeAll(w io.Writer, parts ...[]byte) error {
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("tensorfile: %w", err)
		}
	}
	return nil
}
