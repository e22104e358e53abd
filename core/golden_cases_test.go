package core

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core/internal/cbor"
)

// The cases of testdata/golden. Each positive case is a value; its file is
// what Marshal writes. Lenient and bad cases are bytes, written out here in
// hex or built by the helpers at the end of this file.

type goldenCase struct {
	name  string
	desc  string
	value any
}

type lenientCase struct {
	name string
	twin string // the positive case it decodes to and re-encodes as
	desc string
	data []byte
}

type badCase struct {
	name   string
	desc   string
	data   []byte
	offset int // -1: no offset applies
	kind   Kind
	opts   goldenOpts
}

// goldenOpts are the decode options of a bad case, beyond pass-through
// (which every golden file is decoded with).
type goldenOpts struct {
	maxDepth, maxElements                     int
	maxByteLen, maxMessageSize, maxArrayBytes int64
	unknownError                              bool
}

// json returns the options as the sidecar file names them (the keyword
// arguments of the Python package's loads).
func (o goldenOpts) json() jobj {
	j := jobj{}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_depth", int64(o.maxDepth)}, {"max_elements", int64(o.maxElements)}, {"max_byte_len", o.maxByteLen},
		{"max_message_size", o.maxMessageSize}, {"max_array_bytes", o.maxArrayBytes},
	} {
		if f.v != 0 {
			j = append(j, jmember{f.name, f.v})
		}
	}
	if o.unknownError {
		j = append(j, jmember{"unknown", "error"})
	}
	return j
}

func (o goldenOpts) decOptions() DecOptions {
	d := DecOptions{
		PassThrough: true, MaxDepth: o.maxDepth, MaxElements: o.maxElements, MaxByteLen: o.maxByteLen,
		MaxMessageSize: o.maxMessageSize, MaxArrayBytes: o.maxArrayBytes,
	}
	if o.unknownError {
		d.UnknownTypes = UnknownAsError
	}
	return d
}

// ---- Positive cases ----

func goldenCases(t testing.TB) []goldenCase {
	return []goldenCase{
		// The first seven files, kept byte for byte.
		{"sample", "every kind of value in one small message (the truncation tests cut it at every byte)", sampleValue(t)},
		{"scalars", "null, bools, integers from -2^64-1 to 2^64, one float of each width, text and byte strings", []any{nil, true, false, 0, 23, 24, -1, -25, int64(-1 << 63), uint64(1<<64 - 1),
			bigInt("0x10000000000000000"), bigInt("-0x10000000000000001"),
			Float16(0x7c00), float32(-0.0), 3.141592653589793, "", "ünïcode", []byte{}, []byte{1, 2, 3}}},
		{"dtypes", "a 1-d array of 3 elements of every dtype", dtypesValue(t)},
		{"shapes", "a 0-d, an empty, a column-major and a 4-d array", []any{
			mustArray(t, DTypeFloat64, []int{}, RowMajor, seq(8)),
			mustArray(t, DTypeFloat32, []int{0, 3}, RowMajor, nil),
			mustArray(t, DTypeInt16, []int{2, 3}, ColumnMajor, seq(12)),
			mustArray(t, DTypeUint8, []int{1, 1, 1, 2}, RowMajor, seq(2)),
		}},
		{"keys", "a map with integer, byte-string, bool, text and null keys", Map{{int64(1), "a"}, {int64(-1), "b"}, {[]byte("k"), "c"}, {false, "d"}, {"s", "e"}, {nil, "f"}}},
		{"object", "a typed object whose name no build registers", Object{Name: "viacodec.test.Point", Data: []any{int64(1), int64(2)}}},
		{"refs", "a relay's message: lazy refs into two batches, one item referenced twice, one column-major", goldenRefs()},

		{"example", "the example of docs/wire-format.md §7", exampleValue(t)},
		{"simple", "null, false and true, alone and in containers", []any{nil, false, true, []any{nil}, map[string]any{"t": true, "f": false, "n": nil}}},

		// Integers: every head size, and bignums.
		{"uint-heads", "unsigned integers at both ends of every head size, up to 2^64-1", []any{
			0, 23, 24, 255, 256, 65535, 65536, uint64(1<<32 - 1), uint64(1 << 32), uint64(1<<63 - 1), uint64(1 << 63), uint64(1<<64 - 1)}},
		{"nint-heads", "negative integers at both ends of every head size, down to -2^64", []any{
			-1, -24, -25, -256, -257, -65536, -65537, int64(-1 << 32), int64(-1<<32 - 1), int64(-1 << 63),
			bigInt("-9223372036854775809"), bigInt("-18446744073709551616")}},
		{"bignum-positive", "integers of 2^64 and more: tag 2, no leading zeros", []any{
			bigInt("18446744073709551616"), bigInt("18446744073709551617"), bigInt("0xffffffffffffffffff"),
			bigInt("0x100000000000000000000000000000000"), bigInt("10000000000000000000000000000000000000000")}},
		{"bignum-negative", "integers below -2^64: tag 3, content -1-n", []any{
			bigInt("-18446744073709551617"), bigInt("-18446744073709551618"),
			bigInt("-0x100000000000000000000000000000000"), bigInt("-10000000000000000000000000000000000000000")}},
		{"bignum-boundaries", "integers on both sides of the bignum boundaries, and 0, 1, -1", []any{
			uint64(1<<64 - 1), bigInt("18446744073709551616"), bigInt("-18446744073709551616"), bigInt("-18446744073709551617"), 0, 1, -1}},

		// Floats at their own width.
		{"float16", "float16 scalars: zeros, ±1, largest, subnormals, infinities, NaNs with payloads", float16Scalars()},
		{"float32", "float32 scalars, among them 1.5 (which fits float16 and stays float32)", float32Scalars()},
		{"float64", "float64 scalars: zeros, extremes, subnormals, infinities, quiet and signalling NaNs", float64Scalars()},

		// Strings and containers.
		{"text", "text strings: UTF-8 of 1 to 4 bytes, control characters, lengths around every head size", []any{
			"", "a", "ü", "€", "😀", "\x00", "\x7f", "line\nbreak \"quoted\" \\ tab\t",
			strings.Repeat("x", 23), strings.Repeat("y", 24), strings.Repeat("z", 255), strings.Repeat("é", 128)}},
		{"bytes", "byte strings of 0, 1, 23, 24, 255 and 256 bytes", []any{[]byte{}, []byte{0}, seq(23), seq(24), seq(255), seq(256)}},
		{"containers-empty", "empty lists and maps, nested", map[string]any{
			"list": []any{}, "map": map[string]any{}, "nested": []any{[]any{}, map[string]any{}, []any{[]any{}}}}},
		{"container-heads", "lists of 23, 24 and 256 items, a map of 24 pairs", containerHeads()},
		{"depth-max", "128 nested lists: the deepest body the default MaxDepth accepts", nestedLists(128)},
		{"map-text-keys", "text keys in wire order: shorter first, then bytewise", map[string]any{
			"": 0, "a": 1, "b": 2, "aa": 3, "z": 4, "text": 5, "ü": 6, "zz": 7, "A": 8, "~": 9, "ab": 10, strings.Repeat("k", 24): 11}},
		{"map-key-order", "the key order example of §2.1 (10, 100, -1, h'', \"z\", \"text\", false), with true and null", Map{
			{int64(10), "10"}, {int64(100), "100"}, {int64(-1), "-1"}, {[]byte{}, "h''"}, {"z", "z"}, {"text", "text"},
			{false, "false"}, {true, "true"}, {nil, "null"}}},
		{"map-int-keys", "integer keys of every head size and sign, bignum keys, and a byte-string and a text key", Map{
			{int64(0), 0}, {int64(1), 1}, {int64(-1), 2}, {int64(23), 3}, {int64(24), 4}, {uint64(1<<64 - 1), 5},
			{bigInt("-18446744073709551616"), 6}, {bigInt("18446744073709551616"), 7}, {bigInt("-18446744073709551617"), 8},
			{[]byte("k"), 9}, {"k", 10}}},

		// Arrays.
		{"array-bool", "bool arrays: 2-d in both orders, empty, 0-d", map[string]any{
			"matrix": mustArray(t, DTypeBool, []int{2, 3}, RowMajor, []byte{1, 0, 1, 1, 0, 0}),
			"column": mustArray(t, DTypeBool, []int{2, 3}, ColumnMajor, []byte{0, 1, 1, 0, 1, 1}),
			"empty":  mustArray(t, DTypeBool, []int{0}, RowMajor, nil),
			"scalar": mustArray(t, DTypeBool, []int{}, RowMajor, []byte{1}),
		}},
		{"array-ints", "every integer dtype from its minimum to its maximum", intArrays(t)},
		{"array-float16", "float16 elements: zeros, ±1, largest, subnormals, infinities, NaNs", bitsArray16(t, DTypeFloat16,
			0x0000, 0x8000, 0x3c00, 0xbc00, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe01)},
		{"array-bfloat16", "bfloat16 elements: zeros, 1, -2, largest, subnormal, infinities, NaNs, pi", bitsArray16(t, DTypeBFloat16,
			0x0000, 0x8000, 0x3f80, 0xc000, 0x7f7f, 0x0001, 0x0080, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0x3f81, 0x4049)},
		{"array-float32", "float32 elements: zeros, extremes, subnormal, infinities, NaNs", bitsArray32(t,
			0x00000000, 0x80000000, 0x3fc00000, 0x7f7fffff, 0x00000001, 0x00800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00123)},
		{"array-float64", "float64 elements: zeros, extremes, subnormal, infinities, NaNs", bitsArray64(t,
			0, 0x8000000000000000, 0x3ff8000000000000, 0x7fefffffffffffff, 1, 0x0010000000000000,
			0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001, 0xfff800000000abcd)},
		{"array-float8-e4m3fn", "float8_e4m3fn elements: zeros, ±1, ±448 (largest), subnormals, NaNs", mustArray(t, DTypeFloat8E4M3FN, []int{11}, RowMajor,
			[]byte{0x00, 0x80, 0x38, 0xb8, 0x7e, 0xfe, 0x01, 0x07, 0x08, 0x7f, 0xff})},
		{"array-float8-e5m2", "float8_e5m2 elements: zeros, ±1, ±57344 (largest), subnormals, infinities, NaNs", mustArray(t, DTypeFloat8E5M2, []int{14}, RowMajor,
			[]byte{0x00, 0x80, 0x3c, 0xbc, 0x7b, 0xfb, 0x01, 0x03, 0x04, 0x7c, 0xfc, 0x7e, 0x7d, 0xff})},
		{"array-complex64", "complex64 elements (float32 real, imaginary): a vector and a column-major matrix", complexArrays(t, DTypeComplex64)},
		{"array-complex128", "complex128 elements (float64 real, imaginary): a vector and a column-major matrix", complexArrays(t, DTypeComplex128)},
		{"array-0d", "0-d arrays (shape []) of several dtypes: one element each", zeroDArrays(t)},
		{"array-empty", "arrays with a zero dimension, column-major ones among them, all written with tag 40", []any{
			mustArray(t, DTypeFloat32, []int{0}, RowMajor, nil),
			mustArray(t, DTypeInt16, []int{0, 3}, RowMajor, nil),
			mustArray(t, DTypeUint8, []int{3, 0}, ColumnMajor, nil),
			mustArray(t, DTypeFloat64, []int{2, 0, 2}, ColumnMajor, nil),
			mustArray(t, DTypeBool, []int{0}, RowMajor, nil),
			mustArray(t, DTypeComplex64, []int{0, 0}, RowMajor, nil),
			mustArray(t, DTypeBFloat16, []int{0, 5, 0}, RowMajor, nil),
		}},
		{"array-column-major", "column-major arrays (tag 1040) of 2 and 3 dimensions", map[string]any{
			"f32":  mustArray(t, DTypeFloat32, []int{2, 3}, ColumnMajor, seq(24)),
			"i16":  mustArray(t, DTypeInt16, []int{2, 3, 4}, ColumnMajor, seq(48)),
			"bf16": mustArray(t, DTypeBFloat16, []int{4, 2}, ColumnMajor, seq(16)),
			"c128": mustArray(t, DTypeComplex128, []int{2, 2}, ColumnMajor, seq(64)),
			"u8":   mustArray(t, DTypeUint8, []int{2, 1, 3}, ColumnMajor, seq(6)),
		}},
		{"array-order-collapse", "column-major arrays whose layout the order does not change: written with tag 40, decoded row-major", []any{
			mustArray(t, DTypeFloat32, []int{3}, ColumnMajor, seq(12)),
			mustArray(t, DTypeInt32, []int{1, 3}, ColumnMajor, seq(12)),
			mustArray(t, DTypeUint16, []int{3, 1}, ColumnMajor, seq(6)),
			mustArray(t, DTypeFloat64, []int{1, 1, 5}, ColumnMajor, seq(40)),
			mustArray(t, DTypeFloat16, []int{}, ColumnMajor, seq(2)),
			mustArray(t, DTypeInt8, []int{0, 2}, ColumnMajor, nil),
			mustArray(t, DTypeBool, []int{1}, ColumnMajor, []byte{1}),
		}},
		{"array-large", "arrays whose dimensions and payloads need 2- and 4-byte heads (a 65536-byte payload)", map[string]any{
			"u8":  mustArray(t, DTypeUint8, []int{65536}, RowMajor, seq(65536)),
			"f32": mustArray(t, DTypeFloat32, []int{300}, RowMajor, seq(1200)),
			"i8":  mustArray(t, DTypeInt8, []int{24, 256}, ColumnMajor, seq(24*256)),
		}},

		// Typed objects.
		{"object-nested", "typed objects inside typed objects, holding arrays, maps and null", Object{Name: "viacodec.test.Layer", Data: map[string]any{
			"name": "dense",
			"w":    mustArray(t, DTypeFloat32, []int{2, 2}, RowMajor, seq(16)),
			"bias": Object{Name: "viacodec.test.Bias", Data: []any{
				mustArray(t, DTypeFloat32, []int{2}, RowMajor, seq(8)),
				Object{Name: "viacodec.test.Unit", Data: nil},
			}},
		}}},
		{"object-data-kinds", "typed objects whose data is null, a map with an integer key, bytes, a bignum, a float32, a list", []any{
			Object{Name: "a", Data: nil},
			Object{Name: "b", Data: Map{{int64(1), "x"}}},
			Object{Name: "c", Data: []byte{}},
			Object{Name: "ü.名前", Data: bigInt("18446744073709551616")},
			Object{Name: strings.Repeat("n", 24), Data: float32(1.5)},
			Object{Name: "list", Data: []any{}},
		}},

		// Ref nodes and batch descriptors.
		{"ref-single", "one ref node and its batch descriptor (the example of §3.5)", map[string]any{
			"round": 3,
			"model": map[string]any{"w": &LazyRef{Batch: goldenBatch("http://127.0.0.1:8470", 1, 1, 4<<20), DType: DTypeFloat32, Shape: []int{1024, 1024}}},
		}},
		{"ref-dtypes", "a batch of 17 items, one of every dtype", refDTypes()},
		{"ref-shapes", "ref nodes of a 0-d, an empty, a column-major, a collapsed-order, a 4 GiB and a 5-d array", refShapes()},
		{"ref-order", "ref nodes whose order does not change the layout (empty ones included) are written with order 0", refOrder()},
		{"ref-extremes", "a batch descriptor and ref nodes at the limits: 2^31-1 items, 2^63-1 bytes, dimensions with 8-byte heads", refExtremes()},
		{"ref-three-batches", "several batches in one message, numbered in order of first reference", refThreeBatches()},
		{"ref-reemitted", "the lazy refs of refs.cbor re-emitted by a relay: same descriptors, new batch indices", refReemitted(t)},
		{"ref-mixed-inline", "arrays inline and by reference in one message, and a ref inside a typed object", refMixedInline(t)},
		{"ref-in-pairs", "ref nodes in a map with non-text keys and in a typed object", refInPairs(t)},
		{"ref-held", "a batch held by a relay for its origin: the descriptor's sixth item, holder", refHeld()},
		{"ref-held-object", "a batch an object store holds for its origin: holder is object+ and a presigned GET URL", refHeldObject()},
	}
}

func dtypesValue(t testing.TB) map[string]any {
	m := map[string]any{}
	for dt := DTypeBool; dt < dtypeCount; dt++ {
		data := seq(3 * dt.Size())
		if dt == DTypeBool {
			data = []byte{1, 0, 1}
		}
		m[dt.String()] = mustArray(t, dt, []int{3}, RowMajor, data)
	}
	return m
}

func exampleValue(t testing.TB) map[string]any {
	w, err := ArrayOf([]int{2, 2}, []float32{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ArrayOf(nil, []BFloat16{BFloat16From(1), BFloat16From(-2)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"round": 3,
		"model": map[string]any{"w": w, "b": b},
		"meta":  Map{{int64(1), "one"}, {[]byte{0xff}, true}},
	}
}

func float16Scalars() []any {
	var out []any
	for _, b := range []uint16{0x0000, 0x8000, 0x3c00, 0xbc00, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe01} {
		out = append(out, Float16(b))
	}
	return out
}

func float32Scalars() []any {
	var out []any
	for _, b := range []uint32{0x00000000, 0x80000000, 0x3fc00000, 0x7f7fffff, 0x00000001, 0x00800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00123} {
		out = append(out, math.Float32frombits(b))
	}
	return out
}

func float64Scalars() []any {
	out := []any{0.0, math.Copysign(0, -1), 1.5, 1.0 / 3, 1e300, math.MaxFloat64, math.SmallestNonzeroFloat64}
	for _, b := range []uint64{0x0010000000000000, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001, 0xfff800000000abcd} {
		out = append(out, math.Float64frombits(b))
	}
	return out
}

func containerHeads() map[string]any {
	list := func(n int) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = i
		}
		return l
	}
	m := map[string]any{}
	for i := range 24 {
		m[fmt.Sprintf("k%02d", i)] = i
	}
	return map[string]any{"l23": list(23), "l24": list(24), "l256": list(256), "m24": m}
}

func nestedLists(n int) any {
	var v any = 0
	for range n {
		v = []any{v}
	}
	return v
}

func intArrays(t testing.TB) map[string]any {
	le := binary.LittleEndian
	m := map[string]any{}
	m["int8"] = mustArray(t, DTypeInt8, []int{5}, RowMajor, []byte{0x80, 0xff, 0, 1, 0x7f})
	m["uint8"] = mustArray(t, DTypeUint8, []int{3}, RowMajor, []byte{0, 1, 0xff})
	var b []byte
	for _, v := range []int16{math.MinInt16, -1, 0, 1, math.MaxInt16} {
		b = le.AppendUint16(b, uint16(v))
	}
	m["int16"] = mustArray(t, DTypeInt16, []int{5}, RowMajor, b)
	b = nil
	for _, v := range []int32{math.MinInt32, -1, 0, 1, math.MaxInt32} {
		b = le.AppendUint32(b, uint32(v))
	}
	m["int32"] = mustArray(t, DTypeInt32, []int{5}, RowMajor, b)
	b = nil
	for _, v := range []int64{math.MinInt64, -1, 0, 1, math.MaxInt64} {
		b = le.AppendUint64(b, uint64(v))
	}
	m["int64"] = mustArray(t, DTypeInt64, []int{5}, RowMajor, b)
	m["uint16"] = mustArray(t, DTypeUint16, []int{3}, RowMajor, le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0), 1), math.MaxUint16))
	m["uint32"] = mustArray(t, DTypeUint32, []int{3}, RowMajor, le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 0), 1), math.MaxUint32))
	m["uint64"] = mustArray(t, DTypeUint64, []int{3}, RowMajor, le.AppendUint64(le.AppendUint64(le.AppendUint64(nil, 0), 1), math.MaxUint64))
	return m
}

func bitsArray16(t testing.TB, dt DType, bits ...uint16) *Array {
	var b []byte
	for _, x := range bits {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	return mustArray(t, dt, []int{len(bits)}, RowMajor, b)
}

func bitsArray32(t testing.TB, bits ...uint32) *Array {
	var b []byte
	for _, x := range bits {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return mustArray(t, DTypeFloat32, []int{len(bits)}, RowMajor, b)
}

func bitsArray64(t testing.TB, bits ...uint64) *Array {
	var b []byte
	for _, x := range bits {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return mustArray(t, DTypeFloat64, []int{len(bits)}, RowMajor, b)
}

// complexArrays returns a vector of special values and a column-major
// 2×2 matrix of dtype complex64 or complex128.
func complexArrays(t testing.TB, dt DType) map[string]any {
	parts := []float64{1, 2, math.Copysign(0, -1), math.Inf(1), math.NaN(), 0, -1.5, -0.25}
	var b []byte
	for _, p := range parts {
		if dt == DTypeComplex64 {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(p)))
		} else {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p))
		}
	}
	return map[string]any{
		"vector": mustArray(t, dt, []int{4}, RowMajor, b),
		"matrix": mustArray(t, dt, []int{2, 2}, ColumnMajor, seq(4*dt.Size())),
	}
}

func zeroDArrays(t testing.TB) map[string]any {
	le := binary.LittleEndian
	return map[string]any{
		"float64":     mustArray(t, DTypeFloat64, []int{}, RowMajor, le.AppendUint64(nil, math.Float64bits(math.Pi))),
		"int8":        mustArray(t, DTypeInt8, []int{}, RowMajor, []byte{0xff}),
		"bool":        mustArray(t, DTypeBool, []int{}, RowMajor, []byte{1}),
		"bfloat16":    mustArray(t, DTypeBFloat16, []int{}, RowMajor, le.AppendUint16(nil, 0x3f80)),
		"complex128":  mustArray(t, DTypeComplex128, []int{}, RowMajor, le.AppendUint64(le.AppendUint64(nil, math.Float64bits(1)), math.Float64bits(-1))),
		"float8_e5m2": mustArray(t, DTypeFloat8E5M2, []int{}, RowMajor, []byte{0x3c}),
		"uint64":      mustArray(t, DTypeUint64, []int{}, RowMajor, le.AppendUint64(nil, math.MaxUint64)),
	}
}

// goldenBatch returns a batch descriptor with a fixed ref id (a valid
// UUID version 4) and token derived from seed.
func refHeld() map[string]any {
	b := goldenBatch("https://origin.example:8470", 5, 2, 8)
	b.Holder = "https://relay.site-a.example:8471"
	return map[string]any{
		"w": &LazyRef{Batch: b, Item: 1, DType: DTypeFloat32, Shape: []int{2}},
	}
}

func refHeldObject() map[string]any {
	b := goldenBatch("https://origin.example:8470", 6, 1, 8)
	b.Holder = "object+https://s3.eu-west-3.amazonaws.com/models/run-7/20261207T043000Z-60616263-6465-4667-a869-6a6b6c6d6e6f/batch" +
		"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261207%2Feu-west-3%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20261207T042500Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host" +
		"&X-Amz-Signature=5f1c0b8e3b0c2d7a1e4f6a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d"
	return map[string]any{
		"w": &LazyRef{Batch: b, Item: 0, DType: DTypeFloat32, Shape: []int{2}},
	}
}

func goldenBatch(source string, seed byte, items int, nbytes int64) BatchRef {
	b := BatchRef{Source: source, Items: items, Bytes: nbytes}
	for i := range b.RefID {
		b.RefID[i] = seed*16 + byte(i)
	}
	b.RefID[6] = 0x40 | b.RefID[6]&0x0f // version 4
	b.RefID[8] = 0x80 | b.RefID[8]&0x3f // RFC 9562 variant
	for i := range b.Token {
		b.Token[i] = byte(i)*7 + seed
	}
	return b
}

// goldenRefs is a relay's message: lazy refs into two batches of two
// sources, with fixed ref ids and tokens.
func goldenRefs() any {
	b1 := BatchRef{Source: "http://127.0.0.1:7001", Items: 2, Bytes: 4096 + 64}
	b2 := BatchRef{Source: "http://127.0.0.1:7002", Items: 1, Bytes: 2 * 3 * 2}
	for i := range b1.RefID {
		b1.RefID[i], b2.RefID[i] = byte(i), byte(0x40|i)
	}
	b1.RefID[6], b2.RefID[6] = 0x40, 0x40 // UUID version 4
	b1.RefID[8], b2.RefID[8] = 0x80, 0x80 // RFC 4122 variant
	for i := range b1.Token {
		b1.Token[i], b2.Token[i] = byte(0xa0+i), byte(0xc0+i)
	}
	return map[string]any{
		"round": 3,
		"model": map[string]any{
			"w":    &LazyRef{Batch: b1, Item: 0, DType: DTypeFloat32, Shape: []int{32, 32}},
			"b":    &LazyRef{Batch: b1, Item: 1, DType: DTypeFloat32, Shape: []int{16}},
			"emb":  &LazyRef{Batch: b2, Item: 0, DType: DTypeBFloat16, Shape: []int{2, 3}, Order: ColumnMajor},
			"tied": &LazyRef{Batch: b1, Item: 0, DType: DTypeFloat32, Shape: []int{32, 32}},
		},
	}
}

func refDTypes() map[string]any {
	var total int64
	for dt := DTypeBool; dt < dtypeCount; dt++ {
		total += 3 * int64(dt.Size())
	}
	b := goldenBatch("http://127.0.0.1:7100", 2, int(dtypeCount-1), total)
	m := map[string]any{}
	for dt := DTypeBool; dt < dtypeCount; dt++ {
		m[dt.String()] = &LazyRef{Batch: b, Item: int(dt - 1), DType: dt, Shape: []int{3}}
	}
	return m
}

func refShapes() map[string]any {
	b := goldenBatch("http://127.0.0.1:7200", 3, 6, 8+0+12+12+1<<32+720*2)
	return map[string]any{
		"scalar":   &LazyRef{Batch: b, Item: 0, DType: DTypeFloat64, Shape: []int{}},
		"empty":    &LazyRef{Batch: b, Item: 1, DType: DTypeFloat32, Shape: []int{0}},
		"matrix-f": &LazyRef{Batch: b, Item: 2, DType: DTypeBFloat16, Shape: []int{2, 3}, Order: ColumnMajor},
		"row-f":    &LazyRef{Batch: b, Item: 3, DType: DTypeInt32, Shape: []int{1, 3}, Order: ColumnMajor},
		"huge":     &LazyRef{Batch: b, Item: 4, DType: DTypeUint8, Shape: []int{65536, 65536}},
		"rank5":    &LazyRef{Batch: b, Item: 5, DType: DTypeFloat16, Shape: []int{2, 3, 4, 5, 6}},
	}
}

func refOrder() map[string]any {
	b := goldenBatch("http://127.0.0.1:7300", 4, 5, 16+8+3+16)
	return map[string]any{
		"empty":  &LazyRef{Batch: b, Item: 4, DType: DTypeInt16, Shape: []int{2, 0, 2}, Order: ColumnMajor},
		"row":    &LazyRef{Batch: b, Item: 0, DType: DTypeFloat32, Shape: []int{1, 4}, Order: ColumnMajor},
		"scalar": &LazyRef{Batch: b, Item: 1, DType: DTypeFloat64, Shape: []int{}, Order: ColumnMajor},
		"vector": &LazyRef{Batch: b, Item: 2, DType: DTypeInt8, Shape: []int{3}, Order: ColumnMajor},
		"matrix": &LazyRef{Batch: b, Item: 3, DType: DTypeFloat32, Shape: []int{2, 2}, Order: ColumnMajor},
	}
}

func refExtremes() []any {
	b := goldenBatch("http://127.0.0.1:65535/"+strings.Repeat("p", 300), 5, math.MaxInt32, math.MaxInt64)
	return []any{
		// 8-byte heads, and all declared bytes within the default
		// MaxArrayBytes (64 GiB), which counts lazy refs too: 28 GiB.
		&LazyRef{Batch: b, Item: math.MaxInt32 - 1, DType: DTypeInt16, Shape: []int{2, 1 << 32}, Order: ColumnMajor},
		&LazyRef{Batch: b, Item: 0, DType: DTypeUint8, Shape: []int{1 << 32}},
		&LazyRef{Batch: b, Item: 23, DType: DTypeInt8, Shape: []int{1 << 33}},
	}
}

func refThreeBatches() []any {
	a := goldenBatch("http://127.0.0.1:7401", 6, 1, 16)
	b := goldenBatch("http://127.0.0.1:7402", 7, 2, 16+8)
	c := goldenBatch("http://127.0.0.1:7403", 8, 2, 4+4)
	return []any{
		&LazyRef{Batch: b, Item: 0, DType: DTypeFloat32, Shape: []int{2, 2}},
		map[string]any{
			"a": &LazyRef{Batch: a, Item: 0, DType: DTypeFloat64, Shape: []int{2}},
			"c": &LazyRef{Batch: c, Item: 1, DType: DTypeInt16, Shape: []int{2}},
		},
		&LazyRef{Batch: b, Item: 1, DType: DTypeUint8, Shape: []int{8}},
		&LazyRef{Batch: a, Item: 0, DType: DTypeFloat64, Shape: []int{2}},
	}
}

// refReemitted is what a relay writes after decoding refs.cbor without
// downloading: it adds a field and moves a ref, so that the batch of
// "emb" is referenced first and becomes batch 0.
func refReemitted(t testing.TB) map[string]any {
	data, err := Marshal(goldenRefs())
	if err != nil {
		t.Fatal(err)
	}
	v, err := passThrough.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	model := v.(map[string]any)["model"].(map[string]any)
	return map[string]any{"hop": "relay-1", "a-first": model["emb"], "forwarded": model}
}

func refMixedInline(t testing.TB) map[string]any {
	b := goldenBatch("http://127.0.0.1:7500", 9, 3, 256*256*4+16*2+8*8*4)
	w := &LazyRef{Batch: b, Item: 0, DType: DTypeFloat32, Shape: []int{256, 256}}
	return map[string]any{
		"inline": mustArray(t, DTypeFloat32, []int{2, 2}, RowMajor, seq(16)),
		"ref":    w,
		"list": []any{
			mustArray(t, DTypeFloat16, []int{3}, RowMajor, seq(6)),
			w,
			&LazyRef{Batch: b, Item: 1, DType: DTypeBFloat16, Shape: []int{16}},
		},
		"obj": Object{Name: "viacodec.test.Head", Data: map[string]any{
			"w": &LazyRef{Batch: b, Item: 2, DType: DTypeFloat32, Shape: []int{8, 8}, Order: ColumnMajor},
			"b": mustArray(t, DTypeFloat32, []int{8}, RowMajor, seq(32)),
		}},
	}
}

func refInPairs(t testing.TB) Map {
	b := goldenBatch("http://127.0.0.1:7600", 10, 3, 4*4+2+8)
	return Map{
		{int64(1), &LazyRef{Batch: b, Item: 0, DType: DTypeFloat32, Shape: []int{4}}},
		{[]byte{1}, Object{Name: "t", Data: &LazyRef{Batch: b, Item: 1, DType: DTypeInt16, Shape: []int{}}}},
		{"s", []any{&LazyRef{Batch: b, Item: 0, DType: DTypeFloat32, Shape: []int{4}}, mustArray(t, DTypeUint8, []int{2}, RowMajor, seq(2))}},
		{nil, &LazyRef{Batch: b, Item: 2, DType: DTypeComplex64, Shape: []int{1}}},
	}
}

// ---- Lenient cases: accepted, never written (§2.4) ----

func lenientCases(t testing.TB) []lenientCase {
	twin := func(name string) []byte {
		for _, c := range goldenCases(t) {
			if c.name == name {
				data, err := Marshal(c.value)
				if err != nil {
					t.Fatal(err)
				}
				return data
			}
		}
		t.Fatalf("no golden case %q", name)
		return nil
	}
	lenientHex := func(t testing.TB, body string) []byte {
		b, _ := badHex(t, "E("+body+")")
		return b
	}
	return []lenientCase{
		{"uint-heads-8-byte", "uint-heads", "every head in its 8-byte form", rewriteCBOR(t, twin("uint-heads"), longestHead, false)},
		{"sample-8-byte-heads", "sample", "every head, tags and string lengths included, in its 8-byte form", rewriteCBOR(t, twin("sample"), longestHead, false)},
		{"refs-8-byte-heads", "refs", "ref nodes and batch descriptors with every head in its 8-byte form", rewriteCBOR(t, twin("refs"), longestHead, false)},
		{"keys-longer-heads", "keys", "every head one size longer than needed", rewriteCBOR(t, twin("keys"), longerHead, false)},
		{"map-text-keys-unsorted", "map-text-keys", "text keys in reverse wire order", rewriteCBOR(t, twin("map-text-keys"), sameHead, true)},
		{"map-key-order-unsorted", "map-key-order", "keys of every kind in reverse wire order", rewriteCBOR(t, twin("map-key-order"), sameHead, true)},
		{"sample-unsorted", "sample", "every map, nested ones and a Map included, in reverse wire order", rewriteCBOR(t, twin("sample"), sameHead, true)},
		{"bignum-within-64-bits", "bignum-boundaries", "integers within 64 bits written as bignums, some with leading zero bytes", lenientHex(t, `87
			c2 48 ffffffffffffffff
			c2 4a 0001 0000000000000000
			c3 48 ffffffffffffffff
			c3 49 01 0000000000000000
			c2 40
			c2 43 000001
			c3 40`)},
		{"bignum-leading-zeros", "bignum-negative", "negative bignums with leading zero bytes", lenientHex(t, "84"+
			bignumHex(3, "-18446744073709551617", 1)+bignumHex(3, "-18446744073709551618", 2)+
			bignumHex(3, "-0x100000000000000000000000000000000", 7)+bignumHex(3, "-10000000000000000000000000000000000000000", 24))},
		{"dtypes-bare", "dtypes", "bare typed arrays (no tag 40), read as 1-d arrays", dtypesLenient(t, false, true)},
		{"dtypes-big-endian", "dtypes", "big-endian typed-array tags (65-67, 73-75, 80-82) inside tag 40", dtypesLenient(t, true, false)},
		{"dtypes-bare-big-endian", "dtypes", "bare big-endian typed arrays", dtypesLenient(t, true, true)},
		{"shapes-tag-68", "shapes", "uint8 data under tag 68 (uint8, clamped)", lenientHex(t, `84
			d828 82 80 d856 48 01080f161d242b32
			d828 82 82 00 03 d855 40
			d90410 82 82 02 03 d84d 4c 01080f161d242b323940474e
			d828 82 84 01 01 01 02 d844 42 0108`)},
		{"array-order-collapse-1040", "array-order-collapse", "tag 1040 around arrays whose layout the order does not change", rewriteCBOR(t, twin("array-order-collapse"), columnMajorTag, false)},
		{"array-empty-1040", "array-empty", "tag 1040 around empty arrays, where the order changes no byte", rewriteCBOR(t, twin("array-empty"), columnMajorTag, false)},
		{"ref-order-1", "ref-order", "ref nodes with order 1 where the order does not change the layout", replaceHex(t, twin("ref-order"),
			// A ref node ends with its shape and order: [...shape] 0.
			"82010400", "82010401", "8000", "8001", "810300", "810301", "8302000200", "8302000201")},
	}
}

// headFunc returns the head to write for an item of major type m whose
// argument is arg; short is its shortest form.
type headFunc func(m byte, arg uint64, short []byte) []byte

func sameHead(_ byte, _ uint64, short []byte) []byte { return short }

// longestHead writes every argument in 8 bytes.
func longestHead(m byte, arg uint64, _ []byte) []byte {
	return binary.BigEndian.AppendUint64([]byte{m<<5 | 27}, arg)
}

// longerHead writes every argument one size longer than needed.
func longerHead(m byte, arg uint64, short []byte) []byte {
	switch len(short) {
	case 1:
		return []byte{m<<5 | 24, byte(arg)}
	case 2:
		return binary.BigEndian.AppendUint16([]byte{m<<5 | 25}, uint16(arg))
	case 3:
		return binary.BigEndian.AppendUint32([]byte{m<<5 | 26}, uint32(arg))
	}
	return longestHead(m, arg, short)
}

// columnMajorTag turns tag 40 into tag 1040.
func columnMajorTag(m byte, arg uint64, short []byte) []byte {
	if m == cbor.MajorTag && arg == tagArrayRow {
		return cbor.AppendHead(nil, m, tagArrayColumn)
	}
	return short
}

// rewriteCBOR rewrites every head of a well-formed message with head and,
// if reverse is set, writes the pairs of every map in reverse order. Floats
// and simple values stay as they are.
func rewriteCBOR(t testing.TB, data []byte, head headFunc, reverse bool) []byte {
	r := cbor.Reader{Data: data}
	out := rewriteItem(t, &r, head, reverse)
	if r.Off != len(data) {
		t.Fatalf("rewriteCBOR: %d trailing bytes", len(data)-r.Off)
	}
	return out
}

func rewriteItem(t testing.TB, r *cbor.Reader, head headFunc, reverse bool) []byte {
	start := r.Off
	h, err := r.ReadHead()
	if err != nil {
		t.Fatal(err)
	}
	if h.Major == cbor.MajorSimple {
		return append([]byte{}, r.Data[start:r.Off]...)
	}
	out := head(h.Major, h.Arg, cbor.AppendHead(nil, h.Major, h.Arg))
	switch h.Major {
	case cbor.MajorBytes, cbor.MajorText:
		b, err := r.ReadN(h.Arg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	case cbor.MajorArray:
		for range h.Arg {
			out = append(out, rewriteItem(t, r, head, reverse)...)
		}
	case cbor.MajorMap:
		pairs := make([][]byte, h.Arg)
		for i := range pairs {
			pairs[i] = append(rewriteItem(t, r, head, reverse), rewriteItem(t, r, head, reverse)...)
		}
		for i := range pairs {
			if reverse {
				out = append(out, pairs[len(pairs)-1-i]...)
			} else {
				out = append(out, pairs[i]...)
			}
		}
	case cbor.MajorTag:
		out = append(out, rewriteItem(t, r, head, reverse)...)
	}
	return out
}

// bignumHex returns tag (2 or 3) around the bignum content of n, in hex,
// with zeros leading zero bytes.
func bignumHex(tag int, n string, zeros int) string {
	v := bigInt(n)
	if tag == 3 {
		v = new(big.Int).Sub(new(big.Int).Neg(v), bigOne) // -1 - n
	}
	content := append(make([]byte, zeros), v.Bytes()...)
	b := cbor.AppendHead(nil, cbor.MajorTag, uint64(tag))
	b = cbor.AppendHead(b, cbor.MajorBytes, uint64(len(content)))
	return hex.EncodeToString(append(b, content...))
}

// bigEndianTags maps a dtype to its RFC 8746 big-endian typed-array tag.
var bigEndianTags = map[DType]uint64{
	DTypeUint16: 65, DTypeUint32: 66, DTypeUint64: 67, DTypeInt16: 73, DTypeInt32: 74, DTypeInt64: 75,
	DTypeFloat16: 80, DTypeFloat32: 81, DTypeFloat64: 82,
}

// dtypesLenient writes the value of dtypes.cbor with big-endian tags
// (where RFC 8746 has one) and/or bare typed arrays.
func dtypesLenient(t testing.TB, bigEndian, bare bool) []byte {
	m := dtypesValue(t)
	keys := sortedKeys(m)
	b := cbor.AppendHead(nil, cbor.MajorTag, TagEnvelope)
	b = cbor.AppendHead(b, cbor.MajorArray, 3)
	b = cbor.AppendHead(b, cbor.MajorUint, 1)
	b = cbor.AppendHead(b, cbor.MajorMap, uint64(len(keys)))
	for _, k := range keys {
		a := m[k].(*Array)
		b = cbor.AppendHead(b, cbor.MajorText, uint64(len(k)))
		b = append(b, k...)
		if !bare {
			b = cbor.AppendHead(b, cbor.MajorTag, tagArrayRow)
			b = cbor.AppendHead(b, cbor.MajorArray, 2)
			b = cbor.AppendHead(b, cbor.MajorArray, 1)
			b = cbor.AppendHead(b, cbor.MajorUint, uint64(a.Shape[0]))
		}
		tag, data := dtypes[a.DType].tag, a.Data
		if be, ok := bigEndianTags[a.DType]; ok && bigEndian {
			data = make([]byte, len(a.Data))
			swapInto(data, a.Data, a.DType.Size())
			tag = be
		}
		b = cbor.AppendHead(b, cbor.MajorTag, tag)
		b = cbor.AppendHead(b, cbor.MajorBytes, uint64(len(data)))
		b = append(b, data...)
	}
	return cbor.AppendHead(b, cbor.MajorArray, 0)
}

// replaceHex replaces, in data, each old byte sequence (in hex) by the new
// one that follows it; each must occur exactly once.
func replaceHex(t testing.TB, data []byte, oldNew ...string) []byte {
	s := hex.EncodeToString(data)
	for i := 0; i < len(oldNew); i += 2 {
		if n := strings.Count(s, oldNew[i]); n != 1 {
			t.Fatalf("replaceHex: %s occurs %d times", oldNew[i], n)
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- Bad cases: errors of §6 ----

// badHex decodes a message given in hex with spaces, in which "|" marks the
// offset the error must report (none: no offset) and "E(...)" wraps a body
// in a version-1 envelope with no batches.
func badHex(t testing.TB, s string) ([]byte, int) {
	t.Helper()
	if strings.HasPrefix(s, "E(") && strings.HasSuffix(s, ")") {
		s = "da56430000 83 01" + s[2:len(s)-1] + "80"
	}
	s = strings.Join(strings.Fields(s), "")
	off := -1
	if i := strings.Index(s, "|"); i >= 0 {
		off = i / 2
		s = s[:i] + s[i+1:]
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b, off
}

func badCases(t testing.TB) []badCase {
	desc := hex.EncodeToString(appendBatchRef(nil, goldenBatch("s", 11, 2, 16)))
	other := hex.EncodeToString(appendBatchRef(nil, goldenBatch("t", 12, 1, 8)))
	f32 := "67 666c6f61743332" // "float32"
	node := func(batch, item, dtype, shape, order string) string {
		return "da56430002 85" + batch + item + dtype + shape + order
	}
	tok := strings.Repeat("00", 32)
	id := strings.Repeat("11", 16)
	tests := []struct {
		name, desc, hex string
		kind            Kind
		opts            goldenOpts
	}{
		// syntax
		{"truncated-head", "a message cut inside its first head", "|da5643", KindSyntax, goldenOpts{}},
		{"truncated-body", "an envelope whose list ends after the version", "da56430000 |83 01", KindSyntax, goldenOpts{}},
		{"truncated-text", "a text string of 5 bytes with 3 present", "E(|65 6869)", KindSyntax, goldenOpts{}},
		{"truncated-typed-array", "a typed array declaring 16 bytes with 5 present", "E(d828 82 81 04 d855 |50 0000803f)", KindSyntax, goldenOpts{}},
		{"huge-declared-length", "a byte string declaring 2^62 bytes: a syntax error, not an allocation", "E(|5b 4000000000000000 00010203040506070809)", KindSyntax, goldenOpts{}},
		{"huge-declared-map", "a map declaring 2^62 pairs", "E(|bb 4000000000000000 00010203040506070809)", KindSyntax, goldenOpts{}},
		{"indefinite-bytes", "an indefinite-length byte string", "E(|5f 41 00 ff)", KindSyntax, goldenOpts{}},
		{"indefinite-list", "an indefinite-length list", "E(|9f 01 ff)", KindSyntax, goldenOpts{}},
		{"indefinite-map", "an indefinite-length map", "E(|bf 6161 01 ff)", KindSyntax, goldenOpts{}},
		{"lone-break", "a break code outside an indefinite-length item", "E(|ff)", KindSyntax, goldenOpts{}},
		{"reserved-ai-28", "additional information 28 on an unsigned integer", "E(|1c)", KindSyntax, goldenOpts{}},
		{"reserved-ai-29", "additional information 29 on a negative integer", "E(|3d)", KindSyntax, goldenOpts{}},
		{"reserved-ai-30", "additional information 30 on a tag", "E(|de 00)", KindSyntax, goldenOpts{}},
		{"simple-two-byte-below-32", "simple value 20 in two-byte form", "E(|f8 14)", KindSyntax, goldenOpts{}},
		{"invalid-utf8", "a text string with a truncated UTF-8 sequence", "E(|62 c328)", KindSyntax, goldenOpts{}},
		{"invalid-utf8-overlong", "a text string with an overlong encoding of NUL", "E(|62 c080)", KindSyntax, goldenOpts{}},
		{"invalid-utf8-surrogate", "a text string holding a UTF-16 surrogate", "E(|63 eda080)", KindSyntax, goldenOpts{}},
		{"trailing-bytes", "a byte after the envelope", "da56430000 83 01 00 80 |00", KindSyntax, goldenOpts{}},
		{"duplicate-text-keys", "two equal text keys", "E(a2 6161 01 |6161 02)", KindSyntax, goldenOpts{}},
		{"duplicate-int-keys", "keys 1 and 1, the second in a longer head", "E(a2 01 01 |1801 02)", KindSyntax, goldenOpts{}},
		{"duplicate-bignum-key", "keys 1 and 2(h'01'), equal in the generic data model", "E(a2 01 01 |c2 41 01 02)", KindSyntax, goldenOpts{}},
		{"duplicate-bytes-keys", "two equal byte-string keys after a text key", "E(a3 6161 00 41 00 01 |41 00 02)", KindSyntax, goldenOpts{}},

		// protocol
		{"no-envelope", "a message that is a bare integer", "|01", KindProtocol, goldenOpts{}},
		{"wrong-envelope-tag", "a typed object where the envelope belongs", "|da56430001 82 6161 00", KindProtocol, goldenOpts{}},
		{"envelope-of-2", "an envelope list of 2 items", "da56430000 |82 01 00", KindProtocol, goldenOpts{}},
		{"unknown-version", "format version 2", "da56430000 83 |02 00 80", KindProtocol, goldenOpts{}},
		{"version-not-uint", "version -1", "da56430000 83 |20 00 80", KindProtocol, goldenOpts{}},
		{"batches-not-list", "a map where the batch table belongs", "da56430000 83 01 00 |a0", KindProtocol, goldenOpts{}},
		{"nested-envelope", "an envelope tag inside the body", "E(|da56430000 83 01 00 80)", KindProtocol, goldenOpts{}},
		{"undefined", "the simple value undefined", "E(|f7)", KindProtocol, goldenOpts{}},
		{"simple-value-0", "simple value 0", "E(|e0)", KindProtocol, goldenOpts{}},
		{"simple-value-255", "simple value 255", "E(|f8 ff)", KindProtocol, goldenOpts{}},
		{"float-key", "a float map key", "E(a1 |fb 3ff0000000000000 00)", KindProtocol, goldenOpts{}},
		{"list-key", "a list as a map key", "E(a1 |80 01)", KindProtocol, goldenOpts{}},
		{"object-key", "a typed object as a map key", "E(a1 |da56430001 82 6161 00 01)", KindProtocol, goldenOpts{}},
		{"bignum-of-text", "tag 2 around a text string", "E(c2 |61 61)", KindProtocol, goldenOpts{}},
		{"array-not-pair", "tag 40 around a list of 1", "E(d828 |81 81 00)", KindProtocol, goldenOpts{}},
		{"shape-not-list", "tag 40 whose shape is an integer", "E(d828 82 |01 d855 40)", KindProtocol, goldenOpts{}},
		{"shape-negative", "a dimension of -1", "E(d828 82 81 |20 d855 40)", KindProtocol, goldenOpts{}},
		{"object-name-not-text", "a typed object named by an integer", "E(da56430001 82 |01 00)", KindProtocol, goldenOpts{}},
		{"object-name-empty", "a typed object with an empty name", "E(da56430001 82 |60 00)", KindProtocol, goldenOpts{}},
		{"object-name-not-utf8", "a typed object whose name is not valid UTF-8", "E(da56430001 82 |61ff 00)", KindSyntax, goldenOpts{}},
		{"object-not-pair", "a typed object of one item", "E(da56430001 |81 6161)", KindProtocol, goldenOpts{}},
		{"ref-batch-out-of-range", "a ref node naming batch 1 of 1", "da56430000 83 01 |" + node("01", "00", f32, "8102", "00") + "81" + desc, KindProtocol, goldenOpts{}},
		{"ref-item-out-of-range", "a ref node naming item 2 of a batch of 2", "da56430000 83 01 |" + node("00", "02", f32, "8102", "00") + "81" + desc, KindProtocol, goldenOpts{}},
		{"ref-node-of-4", "a ref node of 4 items", "da56430000 83 01 da56430002 |84 00 00" + f32 + "8102 81" + desc, KindProtocol, goldenOpts{}},
		{"ref-order-2", "a ref node with order 2", "da56430000 83 01 " + node("00", "00", f32, "8102", "|02") + "81" + desc, KindProtocol, goldenOpts{}},
		{"ref-dtype-not-text", "a ref node whose dtype is an integer", "da56430000 83 01 " + node("00", "00", "|01", "8102", "00") + "81" + desc, KindProtocol, goldenOpts{}},
		{"descriptor-of-4", "a batch descriptor of 4 items", "da56430000 83 01 00 81 |84 6173 40 40 00", KindProtocol, goldenOpts{}},
		{"descriptor-source-not-text", "a batch descriptor whose source is an integer", "da56430000 83 01 00 81 85 |01 50" + id + "5820" + tok + "01 01", KindProtocol, goldenOpts{}},
		{"descriptor-ref-id-15-bytes", "a ref id of 15 bytes", "da56430000 83 01 00 81 85 6173 |4f" + id[2:] + "5820" + tok + "01 01", KindProtocol, goldenOpts{}},
		{"descriptor-token-31-bytes", "a token of 31 bytes", "da56430000 83 01 00 81 85 6173 50" + id + "|581f" + tok[2:] + "01 01", KindProtocol, goldenOpts{}},
		{"descriptor-items-beyond-int32", "a batch of 2^40 items", "da56430000 83 01 00 81 85 6173 50" + id + "5820" + tok + "|1b 0000010000000000 01", KindProtocol, goldenOpts{}},
		{"descriptor-of-7", "a batch descriptor of 7 items", "da56430000 83 01 00 81 |87 6173 50" + id + "5820" + tok + "01 01 6173 6173", KindProtocol, goldenOpts{}},
		{"descriptor-holder-empty", "a batch descriptor whose holder is empty", "da56430000 83 01 00 81 86 6173 50" + id + "5820" + tok + "01 01 |60", KindProtocol, goldenOpts{}},
		{"descriptor-holder-not-text", "a batch descriptor whose holder is bytes", "da56430000 83 01 00 81 86 6173 50" + id + "5820" + tok + "01 01 |4173", KindProtocol, goldenOpts{}},
		{"descriptor-duplicate-ref-id", "two descriptors with one ref id", "da56430000 83 01 00 82" + desc + "|" + desc, KindProtocol, goldenOpts{}},
		{"ref-nodes-disagree", "two ref nodes for one item with different shapes", "da56430000 83 01 82" + node("00", "00", f32, "8102", "00") + "|" + node("00", "00", f32, "8103", "00") + "82" + desc + other, KindMismatch, goldenOpts{}},

		// unknown tag
		{"unknown-tag-1", "tag 1 (epoch time), which the format does not use", "E(|c1 00)", KindUnknownTag, goldenOpts{}},
		{"unknown-tag-41", "tag 41 (homogeneous array)", "E(|d829 80)", KindUnknownTag, goldenOpts{}},
		{"unknown-own-tag", "the unassigned tag 0x56430004", "E(|da56430004 00)", KindUnknownTag, goldenOpts{}},
		{"slot-tag-in-message", "the slot tag 0x56430003 of a binding's skeleton, never valid in a message", "E(|da56430003 00)", KindUnknownTag, goldenOpts{}},
		{"reserved-tag-76", "typed-array tag 76, reserved by RFC 8746", "E(|d84c 40)", KindUnknownTag, goldenOpts{}},

		// mismatch
		{"array-classic-list", "tag 40 around a classic list of numbers", "E(d828 82 81 01 |81 00)", KindMismatch, goldenOpts{}},
		{"array-untagged-bytes", "tag 40 around an untagged byte string", "E(d828 82 81 01 |41 01)", KindMismatch, goldenOpts{}},
		{"array-float128", "a float128 typed array", "E(d828 82 81 01 |d853 50 00000000000000000000000000000000)", KindMismatch, goldenOpts{}},
		{"typed-array-not-bytes", "a typed-array tag around an integer", "E(d828 82 81 01 d855 |01)", KindMismatch, goldenOpts{}},
		{"payload-not-whole-elements", "3 bytes of float32 data", "E(d855 |43 000080)", KindMismatch, goldenOpts{}},
		{"payload-shape-mismatch", "shape [2] with one float32", "E(|d828 82 81 02 d855 44 0000803f)", KindMismatch, goldenOpts{}},
		{"shape-overflows", "a shape of 2^62 × 2^62 elements", "E(|d828 82 82 1b4000000000000000 1b4000000000000000 d855 40)", KindMismatch, goldenOpts{}},
		{"shape-overflows-empty-first", "float64 [0, 2^62]: empty, but 2^65 bytes by its other dimension", "E(|d828 82 82 00 1b4000000000000000 d856 40)", KindMismatch, goldenOpts{}},
		{"shape-overflows-empty-last", "float64 [2^62, 0]: the same rule in the other order", "E(|d828 82 82 1b4000000000000000 00 d856 40)", KindMismatch, goldenOpts{}},
		{"bool-element-2", "a bool element of 2", "E(|d828 82 81 01 da56430010 41 02)", KindMismatch, goldenOpts{}},
		{"ref-unknown-dtype", "a ref node of dtype \"float12\"", "da56430000 83 01 " + node("00", "00", "|67 666c6f61743132", "8102", "00") + "81" + desc, KindMismatch, goldenOpts{}},
		{"ref-shape-overflows", "a ref node whose byte length overflows", "da56430000 83 01 |" + node("00", "00", f32, "82 1b4000000000000000 1b4000000000000000", "00") + "81" + desc, KindMismatch, goldenOpts{}},

		// limit
		{"depth-over", "129 nested lists: one more than the default MaxDepth", "E(" + strings.Repeat("81", 128) + "|81 00)", KindLimit, goldenOpts{}},
		{"max-elements", "a list of 3 with max_elements 2", "E(|83 01 02 03)", KindLimit, goldenOpts{maxElements: 2}},
		{"max-byte-len", "a byte string of 4 with max_byte_len 3", "E(|44 00010203)", KindLimit, goldenOpts{maxByteLen: 3}},
		{"max-message-size", "a 12-byte message with max_message_size 11: no offset", "E(83 01 02 03)", KindLimit, goldenOpts{maxMessageSize: 11}},
		{"max-array-bytes", "two 4-byte arrays with max_array_bytes 7", "E(82 d840 44 00010203 |d840 44 00010203)", KindLimit, goldenOpts{maxArrayBytes: 7}},
		{"shape-65-dims", "a float32 array of shape [1] × 65: one dimension more than MaxDims (64, numpy's limit)", "E(d828 82 |9841 " + strings.Repeat("01", 65) + " d855 44 00000000)", KindLimit, goldenOpts{}},
		{"shape-100000-dims", "a shape list of 100,000 dimensions: refused from its head, before anything is allocated", "E(d828 82 |9a000186a0 " + strings.Repeat("01", 100000) + " d855 44 00000000)", KindLimit, goldenOpts{}},
		{"ref-shape-65-dims", "a ref node of shape [1] × 65", "da56430000 83 01 " + node("00", "00", f32, "|9841"+strings.Repeat("01", 65), "00") + "81" + desc, KindLimit, goldenOpts{}},
		{"ref-max-array-bytes", "a ref node declaring float32 [2^30, 2^30] (2^62 bytes) under the default 64 GiB, in pass-through too", "da56430000 83 01 |" + node("00", "00", f32, "82 1a40000000 1a40000000", "00") + "81" + desc, KindLimit, goldenOpts{}},

		// unregistered
		{"unregistered", "a typed object of an unregistered name, with unknown types an error", "E(|da56430001 82 6161 00)", KindUnregistered, goldenOpts{unknownError: true}},
	}
	out := make([]badCase, len(tests))
	for i, tt := range tests {
		data, off := badHex(t, tt.hex)
		out[i] = badCase{name: tt.name, desc: tt.desc, data: data, offset: off, kind: tt.kind, opts: tt.opts}
	}
	return out
}
