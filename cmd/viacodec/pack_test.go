package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/arraytest"
	"github.com/viacodec/viacodec/internal/dirtest"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// carries says which dtypes a format has a name for.
func carries(f tensorfile.Format, dt core.DType) bool {
	switch f {
	case tensorfile.Safetensors:
		return dt != core.DTypeComplex128
	default:
		return dt != core.DTypeBFloat16 && dt != core.DTypeFloat8E4M3FN && dt != core.DTypeFloat8E5M2
	}
}

// modelFile has a tensor of every dtype the format carries, a 0-d one,
// an empty one, and metadata for safetensors.
func modelFile(t *testing.T, f tensorfile.Format) *tensorfile.File {
	rng := rand.New(rand.NewPCG(11, uint64(f)))
	file := &tensorfile.File{}
	for _, dt := range arraytest.DTypes() {
		if carries(f, dt) {
			file.Tensors = append(file.Tensors, tensorfile.Tensor{Name: "layers.0." + dt.String(), Array: arraytest.Random(t, rng, dt, []int{4, 3}, core.RowMajor)})
		}
	}
	file.Tensors = append(file.Tensors,
		tensorfile.Tensor{Name: "scalar", Array: arraytest.Random(t, rng, core.DTypeFloat64, []int{}, core.RowMajor)},
		tensorfile.Tensor{Name: "empty", Array: arraytest.Random(t, rng, core.DTypeInt32, []int{0, 5}, core.RowMajor)},
	)
	if f == tensorfile.Safetensors {
		file.Metadata = map[string]string{"format": "pt", "step": "1200"}
	}
	// In name order, as unpack writes them.
	slices.SortFunc(file.Tensors, func(a, b tensorfile.Tensor) int { return strings.Compare(a.Name, b.Name) })
	return file
}

func writeFile(t *testing.T, path string, f tensorfile.Format, file *tensorfile.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tensorfile.Write(&buf, f, file); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkBody checks that a message holds file's tensors bit for bit and
// its metadata under "__metadata__".
func checkBody(t *testing.T, msg []byte, file *tensorfile.File) {
	t.Helper()
	v, err := core.Unmarshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("body is %T", v)
	}
	for _, tt := range file.Tensors {
		a, ok := body[tt.Name].(*core.Array)
		if !ok || a.DType != tt.Array.DType || !slices.Equal(a.Shape, tt.Array.Shape) || !bytes.Equal(a.Data, tt.Array.Data) {
			t.Fatalf("%q differs in the message", tt.Name)
		}
		delete(body, tt.Name)
	}
	if file.Metadata != nil {
		meta, ok := body[tensorfile.MetadataKey].(map[string]any)
		if !ok || len(meta) != len(file.Metadata) {
			t.Fatalf("metadata %v, want %v", body[tensorfile.MetadataKey], file.Metadata)
		}
		for k, v := range file.Metadata {
			if meta[k] != v {
				t.Fatalf("metadata %q = %v, want %q", k, meta[k], v)
			}
		}
		delete(body, tensorfile.MetadataKey)
	}
	if len(body) != 0 {
		t.Fatalf("the message has more: %v", body)
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	for _, f := range []tensorfile.Format{tensorfile.Safetensors, tensorfile.NPZ} {
		t.Run(f.String(), func(t *testing.T) {
			dir := t.TempDir()
			ext := "." + f.String()
			file := modelFile(t, f)
			orig := writeFile(t, filepath.Join(dir, "model"+ext), f, file)

			viacodec(t, dir, nil, "pack", "model"+ext, "-o", "model.cbor").OK(t)
			msg, err := os.ReadFile(filepath.Join(dir, "model.cbor"))
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, msg, file)

			viacodec(t, dir, nil, "unpack", "-o", "back"+ext, "model.cbor").OK(t)
			back, err := os.ReadFile(filepath.Join(dir, "back"+ext))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, orig) {
				t.Fatal("unpack does not give back the file pack read")
			}

			// Through pipes, with -format.
			packed := viacodec(t, dir, orig, "pack", "-format", f.String(), "-").OK(t).Stdout
			if packed != string(msg) {
				t.Fatal("pack to standard output differs from pack -o")
			}
			if out := viacodec(t, dir, msg, "unpack", "-format", f.String(), "-o", "-", "-").OK(t).Stdout; out != string(orig) {
				t.Fatal("unpack to standard output differs")
			}
		})
	}
}

// What both formats carry crosses from one to the other bit for bit.
func TestSafetensorsToNPZ(t *testing.T) {
	dir := t.TempDir()
	file := modelFile(t, tensorfile.NPZ)
	file.Tensors = slices.DeleteFunc(file.Tensors, func(tt tensorfile.Tensor) bool { return !carries(tensorfile.Safetensors, tt.Array.DType) })
	writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, file)
	viacodec(t, dir, nil, "pack", "m.safetensors", "-o", "m.cbor").OK(t)
	viacodec(t, dir, nil, "unpack", "m.cbor", "-o", "m.npz").OK(t)
	viacodec(t, dir, nil, "pack", "m.npz", "-o", "again.cbor").OK(t)
	msg, _ := os.ReadFile(filepath.Join(dir, "again.cbor"))
	checkBody(t, msg, file)
}

func TestUnpackCannotCarry(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, f := range []tensorfile.Format{tensorfile.Safetensors, tensorfile.NPZ} {
		for _, dt := range arraytest.DTypes() {
			if carries(f, dt) {
				continue
			}
			dir := t.TempDir()
			data, err := core.Marshal(map[string]any{"ok": arraytest.Random(t, rng, core.DTypeFloat32, []int{2}, core.RowMajor), "x": arraytest.Random(t, rng, dt, []int{2}, core.RowMajor)})
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "m.cbor"), data, 0o644)
			viacodec(t, dir, nil, "unpack", "m.cbor", "-o", "out."+f.String()).Fails(t, 1, "cannot carry "+dt.String()+` (tensor "x")`)
			assertOnly(t, dir, "m.cbor")
		}
	}

	// npz has no metadata: an error, unless -drop-metadata.
	dir := t.TempDir()
	file := modelFile(t, tensorfile.Safetensors)
	file.Tensors = slices.DeleteFunc(file.Tensors, func(tt tensorfile.Tensor) bool { return !carries(tensorfile.NPZ, tt.Array.DType) })
	writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, file)
	viacodec(t, dir, nil, "pack", "m.safetensors", "-o", "m.cbor").OK(t)
	viacodec(t, dir, nil, "unpack", "m.cbor", "-o", "m.npz").Fails(t, 1, "npz cannot carry __metadata__")
	assertOnly(t, dir, "m.cbor", "m.safetensors")
	viacodec(t, dir, nil, "unpack", "-drop-metadata", "m.cbor", "-o", "m.npz").OK(t)
	viacodec(t, dir, nil, "pack", "m.npz", "-o", "n.cbor").OK(t)
	msg, _ := os.ReadFile(filepath.Join(dir, "n.cbor"))
	file.Metadata = nil
	checkBody(t, msg, file)
}

// assertOnly checks that dir holds exactly names: no partial output, no
// temporary files.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	got := dirtest.Names(t, dir)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Fatalf("directory holds %q, want %q", got, names)
	}
}

func TestUnpackRejects(t *testing.T) {
	dir := t.TempDir()
	relay := relayMessage(t)
	os.WriteFile(filepath.Join(dir, "relay.cbor"), relay, 0o644)
	viacodec(t, dir, nil, "unpack", "relay.cbor", "-o", "x.safetensors").Fails(t, 1, `"from" is a text string, not an array`)
	lazy, err := core.Marshal(map[string]any{"w": &core.LazyRef{Batch: core.BatchRef{Source: "http://127.0.0.1:7001", Items: 1, Bytes: 8}, DType: core.DTypeFloat32, Shape: []int{2}}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "lazy.cbor"), lazy, 0o644)
	viacodec(t, dir, nil, "unpack", "lazy.cbor", "-o", "x.safetensors").Fails(t, 1, `"w" is held by reference (float32 [2] from http://127.0.0.1:7001)`)
	viacodec(t, dir, nil, "unpack", "lazy.cbor", "-o", "x.bin").Fails(t, 2, `cannot tell the format of output "x.bin"`)
	viacodec(t, dir, nil, "unpack", "lazy.cbor").Fails(t, 2, "give -format for the output on a standard stream")
	viacodec(t, dir, nil, "unpack", "-format", "pickle", "lazy.cbor").Fails(t, 2, `-format "pickle": want safetensors or npz`)
	assertOnly(t, dir, "lazy.cbor", "relay.cbor")
}

// A bad or truncated file is one line on stderr and exit status 1, and
// leaves no output behind.
func TestBadOrTruncatedFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{}
	for _, f := range []tensorfile.Format{tensorfile.Safetensors, tensorfile.NPZ} {
		files["m."+f.String()] = writeFile(t, filepath.Join(dir, "m."+f.String()), f, modelFile(t, f))
	}
	viacodec(t, dir, nil, "pack", "m.safetensors", "-o", "m.cbor").OK(t)
	files["m.cbor"], _ = os.ReadFile(filepath.Join(dir, "m.cbor"))

	for name, data := range files {
		ext := filepath.Ext(name)
		args := func(in string) []string {
			if ext == ".cbor" {
				return []string{"unpack", in, "-o", "out.safetensors"}
			}
			return []string{"pack", in, "-o", "out.cbor"}
		}
		for _, cut := range []int{0, 3, 8, 20, len(data) / 2, len(data) - 1} {
			bad := "bad" + ext
			os.WriteFile(filepath.Join(dir, bad), data[:cut], 0o644)
			r := viacodec(t, dir, nil, args(bad)...)
			r.Fails(t, 1, "viacodec "+args(bad)[0]+": "+bad+": ")
			assertNoOutput(t, dir)
		}
		garbage := "garbage" + ext
		os.WriteFile(filepath.Join(dir, garbage), []byte(strings.Repeat("garbage\n", 20)), 0o644)
		viacodec(t, dir, nil, args(garbage)...).Fails(t, 1, garbage+": ")
		viacodec(t, dir, nil, args("missing"+ext)...).Fails(t, 1, "no such file or directory")
		assertNoOutput(t, dir)
	}
}

func assertNoOutput(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "out.") || strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("output left behind: %s", e.Name())
		}
	}
}
