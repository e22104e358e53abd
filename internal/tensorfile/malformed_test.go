package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/arraytest"
)

// safetensorsFile builds a safetensors file from a header and a buffer.
func safetensorsFile(header string, buf []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), buf...)
}

func TestSafetensorsMalformed(t *testing.T) {
	f32 := `"dtype":"F32","shape":[2]`
	tests := []struct {
		name string
		data []byte
		kind core.Kind
	}{
		{"empty", nil, core.KindSyntax},
		{"short length", []byte{1, 0, 0}, core.KindSyntax},
		{"header past the end", safetensorsFile("{}", nil)[:9], core.KindSyntax},
		{"header over the limit", overLimit(), core.KindLimit},
		{"header past the end of the file", binary.LittleEndian.AppendUint64(nil, maxSafetensorsHeader+1), core.KindSyntax},
		{"not JSON", safetensorsFile("{x", nil), core.KindSyntax},
		{"not an object", safetensorsFile("[]", nil), core.KindSyntax},
		{"trailing after the object", safetensorsFile("{} {}", nil), core.KindSyntax},
		{"unclosed object", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,8]}`, make([]byte, 8)), core.KindSyntax},
		{"invalid UTF-8", safetensorsFile("{\"\xff\":1}", nil), core.KindSyntax},
		{"duplicate name", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,8]},"a":{`+f32+`,"data_offsets":[8,16]}}`, make([]byte, 16)), core.KindSyntax},
		{"unknown field", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,8],"x":1}}`, make([]byte, 8)), core.KindSyntax},
		{"missing dtype", safetensorsFile(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), core.KindSyntax},
		{"missing shape", safetensorsFile(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, make([]byte, 8)), core.KindSyntax},
		{"one offset", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0]}}`, make([]byte, 8)), core.KindSyntax},
		{"float dimension", safetensorsFile(`{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, make([]byte, 8)), core.KindSyntax},
		{"negative dimension", safetensorsFile(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, make([]byte, 8)), core.KindSyntax},
		{"metadata not text", safetensorsFile(`{"__metadata__":{"k":1}}`, nil), core.KindSyntax},
		{"metadata null", safetensorsFile(`{"__metadata__":null}`, nil), core.KindSyntax},
		{"hole before", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[4,12]}}`, make([]byte, 12)), core.KindSyntax},
		{"overlap", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,8]},"b":{`+f32+`,"data_offsets":[4,12]}}`, make([]byte, 12)), core.KindSyntax},
		{"bytes after the last tensor", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,8]}}`, make([]byte, 9)), core.KindSyntax},
		{"offsets past the buffer", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,8]}}`, make([]byte, 7)), core.KindSyntax},
		{"end before begin", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,0]},"b":{`+f32+`,"data_offsets":[0,8]}}`, make([]byte, 8)), core.KindMismatch},
		{"length not dtype × shape", safetensorsFile(`{"a":{`+f32+`,"data_offsets":[0,4]}}`, make([]byte, 4)), core.KindMismatch},
		{"bool not 0 or 1", safetensorsFile(`{"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{2}), core.KindMismatch},
		{"dtype viacodec lacks", safetensorsFile(`{"a":{"dtype":"F8_E8M0","shape":[1],"data_offsets":[0,1]}}`, []byte{2}), core.KindInvalid},
		{"unknown dtype", safetensorsFile(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)), core.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Read(Safetensors, tt.data)
			checkError(t, f, err, tt.kind)
		})
	}
}

// overLimit is a file whose header length is over the limit, with the
// bytes of that header there (untouched memory: no page is written).
func overLimit() []byte {
	data := make([]byte, 8+maxSafetensorsHeader+1)
	binary.LittleEndian.PutUint64(data, maxSafetensorsHeader+1)
	return data
}

func checkError(t *testing.T, f *File, err error, kind core.Kind) {
	t.Helper()
	if core.KindOf(err) != kind || f != nil {
		t.Fatalf("got %v (kind %v); want kind %v and no file", err, core.KindOf(err), kind)
	}
	if !strings.HasPrefix(err.Error(), "tensorfile: ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q is not one line starting with the package name", err)
	}
}

func smallFile(t *testing.T) *File {
	rng := rand.New(rand.NewPCG(3, 4))
	return &File{Tensors: []Tensor{
		{"w", arraytest.Random(t, rng, core.DTypeFloat32, []int{2, 3}, core.RowMajor)},
		{"b", arraytest.Random(t, rng, core.DTypeInt8, []int{3}, core.RowMajor)},
	}}
}

func TestTruncatedAtEveryByte(t *testing.T) {
	for _, format := range []Format{Safetensors, NPZ} {
		var buf bytes.Buffer
		if err := Write(&buf, format, smallFile(t)); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		for i := range len(data) {
			f, err := Read(format, bytes.Clone(data[:i]))
			if err == nil {
				t.Fatalf("%s cut at %d of %d: no error", format, i, len(data))
			}
			checkError(t, f, err, core.KindSyntax)
		}
	}
}

// npzFile builds an .npz file from members and their contents.
func npzFile(t *testing.T, members ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(members); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: members[i], Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(members[i+1]))
	}
	zw.Close()
	return buf.Bytes()
}

// npy returns an .npy file with the given header dict and data.
func npy(dict string, data string) string {
	return npyVersion(1, dict, data)
}

func npyVersion(major byte, dict string, data string) string {
	b := []byte("\x93NUMPY")
	b = append(b, major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)+1))
	}
	return string(b) + dict + "\n" + data
}

func TestNPZMalformed(t *testing.T) {
	dict := func(descr, order, shape string) string {
		return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }"
	}
	f4 := dict("<f4", "False", "(2,)")
	eight := "\x00\x00\x80\x3f\x00\x00\x00\x40"
	tests := []struct {
		name string
		data []byte
		kind core.Kind
	}{
		{"not a zip", []byte("PK not really"), core.KindSyntax},
		{"member not .npy", npzFile(t, "w.txt", "x"), core.KindSyntax},
		{"metadata key as a member", npzFile(t, "__metadata__.npy", npy(f4, eight)), core.KindInvalid},
		{"two members of one name", npzFile(t, "w.npy", npy(f4, eight), "w.npy", npy(f4, eight)), core.KindSyntax},
		{"no magic", npzFile(t, "w.npy", "\x93NUMPX\x01\x00\x00\x00"), core.KindSyntax},
		{"version 4", npzFile(t, "w.npy", npyVersion(4, f4, eight)), core.KindSyntax},
		{"header truncated", npzFile(t, "w.npy", npy(f4, "")[:20]), core.KindSyntax},
		{"header not a dict", npzFile(t, "w.npy", npy("[1]", eight)), core.KindSyntax},
		{"unknown key", npzFile(t, "w.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", eight)), core.KindSyntax},
		{"missing key", npzFile(t, "w.npy", npy("{'descr': '<f4', 'shape': (2,)}", eight)), core.KindSyntax},
		{"key twice", npzFile(t, "w.npy", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", eight)), core.KindSyntax},
		{"shape not a tuple", npzFile(t, "w.npy", npy(dict("<f4", "False", "[2]"), eight)), core.KindSyntax},
		{"negative dimension", npzFile(t, "w.npy", npy(dict("<f4", "False", "(-2,)"), eight)), core.KindSyntax},
		{"fortran_order not a bool", npzFile(t, "w.npy", npy(dict("<f4", "1", "(2,)"), eight)), core.KindSyntax},
		{"text after the dict", npzFile(t, "w.npy", npy(f4+" x", eight)), core.KindSyntax},
		{"bfloat16 as numpy saves it", npzFile(t, "w.npy", npy(dict("<V2", "False", "(4,)"), eight)), core.KindInvalid},
		{"unicode strings", npzFile(t, "w.npy", npy(dict("<U2", "False", "(1,)"), eight)), core.KindInvalid},
		{"objects", npzFile(t, "w.npy", npy(dict("|O", "False", "(1,)"), eight)), core.KindInvalid},
		{"native byte order", npzFile(t, "w.npy", npy(dict("=f4", "False", "(2,)"), eight)), core.KindInvalid},
		{"structured", npzFile(t, "w.npy", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", eight)), core.KindInvalid},
		{"data short", npzFile(t, "w.npy", npy(f4, eight[:7])), core.KindMismatch},
		{"data long", npzFile(t, "w.npy", npy(f4, eight+"\x00")), core.KindMismatch},
		{"bool not 0 or 1", npzFile(t, "w.npy", npy(dict("|b1", "False", "(1,)"), "\x02")), core.KindMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Read(NPZ, tt.data)
			checkError(t, f, err, tt.kind)
		})
	}

	// A flipped bit in a member's data fails its CRC.
	good := npzFile(t, "w.npy", npy(f4, eight))
	if _, err := Read(NPZ, good); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(good, []byte(eight))
	bad := bytes.Clone(good)
	bad[i] ^= 1
	f, err := Read(NPZ, bad)
	checkError(t, f, err, core.KindSyntax)

	// The same inside a deflated member.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "w.npy", Method: zip.Deflate})
	w.Write([]byte(npy(f4, eight)))
	zw.Close()
	if _, err := Read(NPZ, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	deflated := buf.Bytes()
	crc := bytes.Index(deflated, []byte("PK\x07\x08")) + 4 // data descriptor: the CRC follows its signature
	deflated[crc] ^= 1
	f, err = Read(NPZ, deflated)
	checkError(t, f, err, core.KindSyntax)
}

// A file that is not of the format at all says so, rather than what its
// first bytes would mean in it; and Detect tells the two formats from
// anything else.
func TestNotATensorFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	junk := make([]byte, 300)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	junk[7] = 0xff // a header length far past the end
	msg, err := core.Marshal(map[string]any{"w": int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"random bytes": junk,
		"text":         []byte(strings.Repeat("garbage\n", 20)),
		"six bytes":    []byte("hello\n"),
		"a message":    msg,
		"empty":        nil,
		"an npz":       npzFile(t, "w.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "\x00\x00\x80\x3f")),
		"no object":    safetensorsFile("[1, 2]", nil),
	} {
		if _, err := Read(Safetensors, data); err == nil || !strings.HasPrefix(err.Error(), "tensorfile: not a safetensors file (") {
			t.Errorf("%s as safetensors: %v", name, err)
		}
		if name == "an npz" {
			continue
		}
		if _, err := Read(NPZ, data); err == nil || !strings.HasPrefix(err.Error(), "tensorfile: not an .npz file (") {
			t.Errorf("%s as npz: %v", name, err)
		}
		if f, ok := Detect(data); ok {
			t.Errorf("Detect(%s) = %v", name, f)
		}
	}
	for _, format := range []Format{Safetensors, NPZ} {
		var buf bytes.Buffer
		if err := Write(&buf, format, smallFile(t)); err != nil {
			t.Fatal(err)
		}
		if f, ok := Detect(buf.Bytes()); !ok || f != format {
			t.Errorf("Detect(a %v file) = %v, %v", format, f, ok)
		}
	}
}
