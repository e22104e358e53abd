// Package tensorfile reads and writes the files that model weights come
// in, safetensors and numpy's .npz, and maps them to and from the body of
// a viacodec message: a map from tensor name to array.
//
// Every element survives bit for bit: files hold little-endian elements
// (big-endian .npy data is byte-swapped on reading, values unchanged) and
// arrays are never converted. A dtype a format has no name for is an
// error, never a silent change:
//
//	dtype          safetensors  .npy descr
//	bool           BOOL         |b1
//	int8…int64     I8…I64       |i1 <i2 <i4 <i8
//	uint8…uint64   U8…U64       |u1 <u2 <u4 <u8
//	float16        F16          <f2
//	bfloat16       BF16         (none: numpy saves it as raw <V2)
//	float32        F32          <f4
//	float64        F64          <f8
//	complex64      C64          <c8
//	complex128     (none)       <c16
//	float8_e4m3fn  F8_E4M3      (none: numpy saves it as raw <V1)
//	float8_e5m2    F8_E5M2      (none: numpy saves it as raw <V1)
//
// Errors are *core.Error values: KindSyntax for a malformed or truncated
// file, KindLimit for a header over its limit, KindMismatch for data whose
// length or content disagrees with its dtype and shape, KindInvalid for
// what a format or a message body cannot carry.
package tensorfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"path/filepath"
	"slices"
	"strings"

	"github.com/viacodec/viacodec/core"
)

// Format is a tensor file format.
type Format uint8

// The formats.
const (
	Safetensors Format = iota + 1 // safetensors: a JSON header, then the tensors' bytes
	NPZ                           // numpy's .npz: a zip archive of .npy files
)

// String returns the format's name, as ParseFormat takes it.
func (f Format) String() string {
	switch f {
	case Safetensors:
		return "safetensors"
	case NPZ:
		return "npz"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// ParseFormat returns the format named "safetensors" or "npz".
func ParseFormat(name string) (Format, error) {
	switch name {
	case "safetensors":
		return Safetensors, nil
	case "npz":
		return NPZ, nil
	}
	return 0, core.NewError(core.KindInvalid, nil, "tensorfile: unknown format %q (want safetensors or npz)", name)
}

// FormatOf returns the format that a file name's extension names:
// .safetensors or .npz.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		return Safetensors, nil
	case ".npz":
		return NPZ, nil
	}
	return 0, core.NewError(core.KindInvalid, nil, "tensorfile: cannot tell the format of %q from its extension (want .safetensors or .npz)", path)
}

// Tensor is one named array of a file.
type Tensor struct {
	Name  string
	Array *core.Array
}

// File is the content of a tensor file.
type File struct {
	// Tensors in file order: by data offset (safetensors), by member (npz).
	Tensors []Tensor
	// Metadata is safetensors' free-form "__metadata__", nil when the file
	// has none. npz has no metadata.
	Metadata map[string]string
}

// Read parses a file of the given format. The arrays alias data.
func Read(format Format, data []byte) (*File, error) {
	switch format {
	case Safetensors:
		return readSafetensors(data)
	case NPZ:
		return readNPZ(data)
	}
	return nil, core.NewError(core.KindInvalid, nil, "tensorfile: unknown format %d", format)
}

// Detect tells the format of a file from its first bytes: a safetensors
// header length that the file holds, then a JSON object; or the signature
// of a zip archive, as an .npz file is. It checks no more: Read does.
func Detect(data []byte) (Format, bool) {
	if len(data) >= 8 {
		if n := binary.LittleEndian.Uint64(data); n <= uint64(len(data)-8) && isJSONObject(data[8:8+n]) {
			return Safetensors, true
		}
	}
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")) {
		return NPZ, true
	}
	return 0, false
}

// Write writes f in the given format. It checks that the format can carry
// every tensor and the metadata before it writes anything.
func Write(w io.Writer, format Format, f *File) error {
	if f == nil {
		return core.NewError(core.KindInvalid, nil, "tensorfile: nil *File")
	}
	names := map[string]bool{}
	for _, t := range f.Tensors {
		if names[t.Name] {
			return core.NewError(core.KindInvalid, nil, "tensorfile: two tensors named %q", t.Name)
		}
		names[t.Name] = true
		if err := t.Array.Validate(); err != nil {
			return core.NewError(core.KindOf(err), err, "tensorfile: tensor %q", t.Name)
		}
	}
	switch format {
	case Safetensors:
		return writeSafetensors(w, f)
	case NPZ:
		return writeNPZ(w, f)
	}
	return core.NewError(core.KindInvalid, nil, "tensorfile: unknown format %d", format)
}

// MetadataKey is the body key under which safetensors metadata travels in
// a message: a map of text to text.
const MetadataKey = "__metadata__"

// Body returns the message body that holds f: each tensor under its name,
// and the metadata, if any, under MetadataKey. The arrays alias f's.
func (f *File) Body() (map[string]any, error) {
	body := make(map[string]any, len(f.Tensors)+1)
	for _, t := range f.Tensors {
		if t.Name == MetadataKey {
			return nil, core.NewError(core.KindInvalid, nil, "tensorfile: a tensor is named %q, the key that metadata travels under", MetadataKey)
		}
		if _, dup := body[t.Name]; dup {
			return nil, core.NewError(core.KindInvalid, nil, "tensorfile: two tensors named %q", t.Name)
		}
		body[t.Name] = t.Array
	}
	if f.Metadata != nil {
		meta := make(map[string]any, len(f.Metadata))
		for k, v := range f.Metadata {
			meta[k] = v
		}
		body[MetadataKey] = meta
	}
	return body, nil
}

// FromBody returns the file that a message body describes: a map from
// tensor name to inline array, with metadata, if any, under MetadataKey.
// Tensors come in name order; the arrays alias the body's.
func FromBody(body any) (*File, error) {
	m, ok := body.(map[string]any)
	if !ok {
		return nil, core.NewError(core.KindInvalid, nil, "tensorfile: the message body is %s, not a map of tensor names to arrays", describe(body))
	}
	f := &File{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		v := m[name]
		if name == MetadataKey {
			meta, err := metadataOf(v)
			if err != nil {
				return nil, err
			}
			f.Metadata = meta
			continue
		}
		switch a := v.(type) {
		case *core.Array:
			f.Tensors = append(f.Tensors, Tensor{Name: name, Array: a})
		case *core.LazyRef:
			return nil, core.NewError(core.KindInvalid, nil, "tensorfile: %q is held by reference (%s %v from %s), not inline", name, a.DType, a.Shape, a.Batch.Source)
		default:
			return nil, core.NewError(core.KindInvalid, nil, "tensorfile: %q is %s, not an array", name, describe(v))
		}
	}
	return f, nil
}

// PlanMetadata checks that the body of a plan (core.DecMode.Plan) makes a
// file, as FromBody checks a decoded body: a map from tensor name to
// array (a core.SlotIndex), with metadata, if any, under MetadataKey,
// which it returns.
func PlanMetadata(body any) (map[string]string, error) {
	m, ok := body.(map[string]any)
	if !ok {
		return nil, core.NewError(core.KindInvalid, nil, "tensorfile: the message body is %s, not a map of tensor names to arrays", describe(body))
	}
	var meta map[string]string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		switch v := m[name]; {
		case name == MetadataKey:
			var err error
			if meta, err = metadataOf(v); err != nil {
				return nil, err
			}
		default:
			if _, ok := v.(core.SlotIndex); !ok {
				return nil, core.NewError(core.KindInvalid, nil, "tensorfile: %q is %s, not an array", name, describe(v))
			}
		}
	}
	return meta, nil
}

func metadataOf(v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, core.NewError(core.KindInvalid, nil, "tensorfile: %q is %s, not a map of text to text", MetadataKey, describe(v))
	}
	meta := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, core.NewError(core.KindInvalid, nil, "tensorfile: %s entry %q is %s, not text", MetadataKey, k, describe(v))
		}
		meta[k] = s
	}
	return meta, nil
}

// describe names the kind of a decoded value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case string:
		return "a text string"
	case []byte:
		return "a byte string"
	case []any:
		return "a list"
	case map[string]any, core.Map:
		return "a map"
	case core.Object:
		return fmt.Sprintf("a typed object %q", v.Name)
	case *core.Array:
		return "an array"
	case *core.LazyRef:
		return "a reference"
	case int64, uint64, *big.Int:
		return "an integer"
	case core.Float16, float32, float64:
		return "a float"
	}
	return fmt.Sprintf("a %T", v)
}

// rowMajor returns a's elements in row-major order: a.Data itself, or a
// transposed copy for a column-major array whose order changes its layout.
func rowMajor(a *core.Array) []byte {
	long := 0
	for _, d := range a.Shape {
		if d > 1 {
			long++
		}
	}
	if a.Order == core.RowMajor || long < 2 {
		return a.Data
	}
	size := a.DType.Size()
	out := make([]byte, len(a.Data))
	rank := len(a.Shape)
	// Column-major strides, in elements.
	strides := make([]int, rank)
	s := 1
	for i, d := range a.Shape {
		strides[i] = s
		s *= d
	}
	idx := make([]int, rank)
	for o := 0; o < len(out); o += size {
		src := 0
		for i, x := range idx {
			src += x * strides[i]
		}
		copy(out[o:o+size], a.Data[src*size:src*size+size])
		// Advance the row-major index: last dimension fastest.
		for i := rank - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < a.Shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

// errorf is a tensorfile error of kind k.
func errorf(k core.Kind, format string, args ...any) error {
	return core.NewError(k, nil, "tensorfile: "+format, args...)
}

// wrap is a tensorfile error of kind k around err.
func wrap(k core.Kind, err error, format string, args ...any) error {
	return core.NewError(k, err, "tensorfile: "+format, args...)
}

// within puts context in front of err's message, keeping its kind and a
// single package prefix.
func within(err error, format string, args ...any) error {
	if e, ok := errors.AsType[*core.Error](err); ok && strings.HasPrefix(e.Msg, "tensorfile: ") {
		return core.NewError(e.Kind, e.Err, "tensorfile: %s: %s", fmt.Sprintf(format, args...), strings.TrimPrefix(e.Msg, "tensorfile: "))
	}
	return wrap(core.KindOf(err), err, format, args...)
}
