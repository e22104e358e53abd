package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/arraytest"
)

// cannotCarry lists, per format, the dtypes it has no name for.
var cannotCarry = map[Format][]core.DType{
	Safetensors: {core.DTypeComplex128},
	NPZ:         {core.DTypeBFloat16, core.DTypeFloat8E4M3FN, core.DTypeFloat8E5M2},
}

// sampleFile has one tensor of every dtype the format carries, in several
// shapes (0-d, empty, 3-d), and a column-major one.
func sampleFile(t testing.TB, format Format) *File {
	rng := rand.New(rand.NewPCG(7, uint64(format)))
	f := &File{}
	for _, dt := range arraytest.DTypes() {
		if slices.Contains(cannotCarry[format], dt) {
			continue
		}
		f.Tensors = append(f.Tensors,
			Tensor{"layers.0." + dt.String(), arraytest.Random(t, rng, dt, []int{3, 5}, core.RowMajor)},
			Tensor{"scalar." + dt.String(), arraytest.Random(t, rng, dt, []int{}, core.RowMajor)},
		)
	}
	f.Tensors = append(f.Tensors,
		Tensor{"empty", arraytest.Random(t, rng, core.DTypeFloat32, []int{0, 4}, core.RowMajor)},
		Tensor{"cube", arraytest.Random(t, rng, core.DTypeInt16, []int{2, 3, 4}, core.RowMajor)},
		Tensor{"fortran", arraytest.Random(t, rng, core.DTypeFloat64, []int{3, 2, 4}, core.ColumnMajor)},
		Tensor{"ünïcode \"name\"\n", arraytest.Random(t, rng, core.DTypeUint8, []int{2}, core.RowMajor)},
	)
	if format == Safetensors {
		f.Metadata = map[string]string{"format": "pt", "note": "ünï \"quoted\"\n\x01"}
	}
	return f
}

func TestRoundTripEveryDType(t *testing.T) {
	for _, format := range []Format{Safetensors, NPZ} {
		t.Run(format.String(), func(t *testing.T) {
			f := sampleFile(t, format)
			var buf bytes.Buffer
			if err := Write(&buf, format, f); err != nil {
				t.Fatal(err)
			}
			got, err := Read(format, buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			checkSameFile(t, f, got)
		})
	}
}

// checkSameFile checks that got holds want's tensors, bit for bit, as
// row-major data where the orders differ, and the same metadata.
func checkSameFile(t *testing.T, want, got *File) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	byName := map[string]*core.Array{}
	for _, g := range got.Tensors {
		byName[g.Name] = g.Array
	}
	for _, w := range want.Tensors {
		g, ok := byName[w.Name]
		if !ok {
			t.Fatalf("tensor %q is missing", w.Name)
		}
		if g.DType != w.Array.DType || !slices.Equal(g.Shape, w.Array.Shape) {
			t.Fatalf("%q: %s %v, want %s %v", w.Name, g.DType, g.Shape, w.Array.DType, w.Array.Shape)
		}
		if !bytes.Equal(rowMajor(g), rowMajor(w.Array)) {
			t.Fatalf("%q: elements differ", w.Name)
		}
	}
	if (got.Metadata == nil) != (want.Metadata == nil) || len(got.Metadata) != len(want.Metadata) {
		t.Fatalf("metadata %v, want %v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Fatalf("metadata %q = %q, want %q", k, got.Metadata[k], v)
		}
	}
}

func TestNPZKeepsColumnMajor(t *testing.T) {
	f := sampleFile(t, NPZ)
	var buf bytes.Buffer
	if err := Write(&buf, NPZ, f); err != nil {
		t.Fatal(err)
	}
	got, err := Read(NPZ, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got.Tensors {
		if g.Name == "fortran" && (g.Array.Order != core.ColumnMajor || !bytes.Equal(g.Array.Data, f.Tensors[len(f.Tensors)-2].Array.Data)) {
			t.Fatalf("fortran: order %v; want the column-major bytes as they were", g.Array.Order)
		}
	}
}

func TestRowMajor(t *testing.T) {
	// A 2×3×2 column-major array of uint16 whose element (i, j, k) is
	// 100i + 10j + k: row-major it counts up in the last index first.
	shape := []int{2, 3, 2}
	var col []uint16
	for k := range 2 {
		for j := range 3 {
			for i := range 2 {
				col = append(col, uint16(100*i+10*j+k))
			}
		}
	}
	a, _ := core.ArrayOf(shape, col)
	a.Order = core.ColumnMajor
	got, err := core.Elements[uint16](&core.Array{DType: a.DType, Shape: shape, Data: rowMajor(a)})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint16{0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestCannotCarry(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for format, dts := range cannotCarry {
		for _, dt := range dts {
			f := sampleFile(t, format)
			f.Metadata = nil
			f.Tensors = append(f.Tensors, Tensor{"x", arraytest.Random(t, rng, dt, []int{2}, core.RowMajor)})
			var buf bytes.Buffer
			err := Write(&buf, format, f)
			if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), dt.String()) {
				t.Fatalf("%s, %s: got %v, want ErrInvalid naming the dtype", format, dt, err)
			}
			if buf.Len() != 0 {
				t.Fatalf("%s, %s: %d bytes written before the error", format, dt, buf.Len())
			}
		}
	}
	f := &File{Metadata: map[string]string{}}
	if err := Write(&bytes.Buffer{}, NPZ, f); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("npz with metadata: got %v, want ErrInvalid", err)
	}
}

// The safetensors library (0.8.0, safetensors.numpy.save) wrote this file
// for {"a": zeros(3, float32), "b": zeros(2, uint8), "c": zeros(1, float64),
// "z": zeros((), int16), "é\"\n": zeros(1, int8)}: tensors by dtype, widest
// first, then by name; header padded with spaces to a multiple of 8.
const safetensorsFromPython = "18010000000000007b2263223a7b226474797065223a22463634222c227368617065223a5b315d2c22646174615f6f666673657473223a5b302c385d7d2c2261223a7b226474797065223a22463332222c227368617065223a5b335d2c22646174615f6f666673657473223a5b382c32305d7d2c227a223a7b226474797065223a22493136222c227368617065223a5b5d2c22646174615f6f666673657473223a5b32302c32325d7d2c22c3a95c225c6e223a7b226474797065223a224938222c227368617065223a5b315d2c22646174615f6f666673657473223a5b32322c32335d7d2c2262223a7b226474797065223a225538222c227368617065223a5b325d2c22646174615f6f666673657473223a5b32332c32355d7d7d202020202000000000000000000000000000000000000000000000000000"

func TestSafetensorsLayoutOfTheLibrary(t *testing.T) {
	data, _ := hex.DecodeString(safetensorsFromPython)
	f, err := Read(Safetensors, data)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tt := range f.Tensors {
		names = append(names, tt.Name)
	}
	if want := []string{"c", "a", "z", "é\"\n", "b"}; !slices.Equal(names, want) {
		t.Fatalf("file order %q, want %q", names, want)
	}
	slices.Reverse(f.Tensors) // the writer sorts them again
	var buf bytes.Buffer
	if err := Write(&buf, Safetensors, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("wrote\n%x\nthe library wrote\n%x", buf.Bytes(), data)
	}
}

func TestNPYHeaderOfNumpy(t *testing.T) {
	// Headers numpy 2.4 writes (numpy.lib.format.write_array).
	tests := []struct {
		dtype core.DType
		shape []int
		order core.Order
		dict  string
	}{
		{core.DTypeFloat32, []int{2, 3}, core.RowMajor, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
		{core.DTypeBool, []int{5}, core.RowMajor, "{'descr': '|b1', 'fortran_order': False, 'shape': (5,), }"},
		{core.DTypeFloat64, []int{}, core.RowMajor, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"},
		{core.DTypeInt16, []int{2, 3}, core.ColumnMajor, "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }"},
		{core.DTypeComplex128, []int{0, 7}, core.RowMajor, "{'descr': '<c16', 'fortran_order': False, 'shape': (0, 7), }"},
		{core.DTypeUint8, []int{12345678901, 0}, core.RowMajor, "{'descr': '|u1', 'fortran_order': False, 'shape': (12345678901, 0), }"},
	}
	for _, tt := range tests {
		got, ok := appendNPYHeader(nil, &core.Array{DType: tt.dtype, Shape: tt.shape, Order: tt.order})
		want := "\x93NUMPY\x01\x00v\x00" + tt.dict + strings.Repeat(" ", 128-10-1-len(tt.dict)) + "\n"
		if !ok || string(got) != want {
			t.Errorf("%s %v:\n got %q\nwant %q", tt.dtype, tt.shape, got, want)
		}
		h, n, err := readNPYHeader(bytes.NewReader(got))
		if err != nil || n != len(got) || h.dtype != tt.dtype || !slices.Equal(h.shape, tt.shape) || h.order != tt.order {
			t.Errorf("%s %v: read back %+v, %d, %v", tt.dtype, tt.shape, h, n, err)
		}
	}
}

func TestNPYBigEndianAndDeflated(t *testing.T) {
	// numpy.savez_compressed of {"be": arange(3, dtype=">i4"),
	// "c": array([1+2j], dtype=">c8")}, built here with the same bytes.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	members := []struct {
		name, descr, shape string
		data               []byte
	}{
		{"be", ">i4", "(3,)", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2}},
		{"c", ">c8", "(1,)", []byte{0x3f, 0x80, 0, 0, 0x40, 0, 0, 0}},
	}
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name + ".npy", Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		dict := "{'descr': '" + m.descr + "', 'fortran_order': False, 'shape': " + m.shape + ", }"
		hdr := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
		binary.LittleEndian.PutUint16(hdr[8:], uint16(len(dict)+1))
		w.Write(append(append(hdr, dict...), '\n'))
		w.Write(m.data)
	}
	zw.Close()
	f, err := Read(NPZ, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	be, _ := core.Elements[int32](f.Tensors[0].Array)
	c, _ := core.Elements[complex64](f.Tensors[1].Array)
	if !slices.Equal(be, []int32{0, 1, 2}) || !slices.Equal(c, []complex64{1 + 2i}) {
		t.Fatalf("got %v and %v", be, c)
	}
}

func TestBody(t *testing.T) {
	f := sampleFile(t, Safetensors)
	body, err := f.Body()
	if err != nil {
		t.Fatal(err)
	}
	data, err := core.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := core.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromBody(decoded)
	if err != nil {
		t.Fatal(err)
	}
	checkSameFile(t, f, got)
	if !slices.IsSortedFunc(got.Tensors, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("tensors are not in name order")
	}

	// An empty metadata map is kept as such.
	got, err = FromBody(map[string]any{MetadataKey: map[string]any{}})
	if err != nil || got.Metadata == nil || len(got.Tensors) != 0 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestFromBodyRejects(t *testing.T) {
	a, _ := core.ArrayOf(nil, []float32{1})
	lazy := &core.LazyRef{Batch: core.BatchRef{Source: "http://127.0.0.1:1"}, DType: core.DTypeFloat32, Shape: []int{1}}
	tests := []struct {
		name string
		body any
		want string
	}{
		{"list body", []any{a}, "the message body is a list"},
		{"map with non-text keys", core.Map{{Key: int64(1), Value: a}}, "the message body is a map"},
		{"reference", map[string]any{"w": lazy}, `"w" is held by reference`},
		{"scalar", map[string]any{"w": a, "round": int64(3)}, `"round" is an integer, not an array`},
		{"nested", map[string]any{"model": map[string]any{"w": a}}, `"model" is a map, not an array`},
		{"metadata not a map", map[string]any{MetadataKey: "x"}, "not a map of text to text"},
		{"metadata value not text", map[string]any{MetadataKey: map[string]any{"k": int64(1)}}, `entry "k" is an integer, not text`},
	}
	for _, tt := range tests {
		f, err := FromBody(tt.body)
		if !errors.Is(err, core.ErrInvalid) || f != nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "tensorfile: ") {
			t.Errorf("%s: got %v; want ErrInvalid with %q", tt.name, err, tt.want)
		}
	}
	bad := &File{Tensors: []Tensor{{MetadataKey, a}}}
	if _, err := bad.Body(); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("tensor named %s: got %v", MetadataKey, err)
	}
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{"m.safetensors": Safetensors, "dir/M.NPZ": NPZ} {
		if got, err := FormatOf(path); err != nil || got != want {
			t.Errorf("%s: got %v, %v", path, got, err)
		}
	}
	for _, path := range []string{"m.bin", "m", "-"} {
		if _, err := FormatOf(path); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", path, err)
		}
	}
	if f, err := ParseFormat("npz"); err != nil || f != NPZ {
		t.Errorf("ParseFormat: %v, %v", f, err)
	}
	if _, err := ParseFormat("pickle"); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("ParseFormat(pickle): %v", err)
	}
}
