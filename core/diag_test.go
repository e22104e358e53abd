package core

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestDiagnoseVectors(t *testing.T) {
	long := strings.Repeat("ab", 65)
	tests := []struct{ hex, want string }{
		// Integers and bignums (RFC 8949 Appendix A).
		{"00", "0"},
		{"1bffffffffffffffff", "18446744073709551615"},
		{"3bffffffffffffffff", "-18446744073709551616"},
		{"3b7fffffffffffffff", "-9223372036854775808"},
		{"c249010000000000000000", "18446744073709551616"},
		{"c349010000000000000000", "-18446744073709551617"},
		{"c240", "0"},
		{"c2 61 61", `2("a")`}, // not a bignum: written as the tag it is
		// Floats keep their width.
		{"f93e00", "1.5_1"},
		{"fa3fc00000", "1.5_2"},
		{"fb3ff8000000000000", "1.5_3"},
		{"f98000", "-0.0_1"},
		{"f97e00", "NaN_1"},
		{"fa7f800000", "Infinity_2"},
		{"fbfff0000000000000", "-Infinity_3"},
		{"fb7e37e43c8800759c", "1.0e+300_3"},
		{"fa33d6bf95", "1.0000000116860974e-7_2"},
		{"fb3eb0c6f7a0b5ed8d", "0.000001_3"},
		{"fb3e7ad7f29abcaf48", "1.0e-7_3"},
		{"fb44b52d02c7e14af6", "1.0e+23_3"},
		{"fb4480000000000000", "9.44473296573929e+21_3"},
		{"fa47c35000", "100000.0_2"},
		// Simple values.
		{"f4", "false"}, {"f5", "true"}, {"f6", "null"}, {"f7", "undefined"},
		{"f0", "simple(16)"}, {"f8ff", "simple(255)"},
		// Text: JSON escapes for quote, backslash, controls and
		// non-printing characters; printable UTF-8 as it is.
		{"62225c", `"\"\\"`},
		{"63 090a0d", `"\t\n\r"`},
		{"62 017f", `"\u0001\u007f"`},
		{"63 e280ae", `"\u202e"`},
		{"64 f09f9880", `"😀"`},
		{"64 f3a08081", `"\udb40\udc01"`}, // U+E0001, a non-printing tag character
		{"67 c3bc6ec3af6365", `"ünïce"`},
		// Byte strings: long ones shortened.
		{"40", "h''"},
		{"4401020304", "h'01020304'"},
		{"5840" + long[:128], "h'" + long[:128] + "'"},
		{"5841" + long, "h'" + long[:32] + "…' / 65 bytes /"},
		// Containers, tags.
		{"80", "[]"}, {"a0", "{}"},
		{"83 01 82 02 03 a1 61 61 f6", `[1, [2, 3], {"a": null}]`},
		{"d863 00", "99(0)"},
		// Arrays: payload elided, dtype and bytes in a comment.
		{"d828 82 82 01 02 d855 48 0000803f00000040", "40([[1, 2], 85(h'…') / float32, 8 bytes /])"},
		{"d90410 82 82 02 02 da56430011 48 803f00c0803f00c0", "1040([[2, 2], 1447231505(h'…') / bfloat16, 8 bytes /])"},
		{"d855 40", "85(h'') / float32, 0 bytes /"},
		{"d841 42 0001", "65(h'…') / uint16 big-endian, 2 bytes /"},
		{"d844 41 07", "68(h'…') / uint8, 1 bytes /"},
		{"d857 50 00000000000000000000000000000000", "87(h'00000000000000000000000000000000')"}, // float128: no dtype
		{"d855 01", "85(1)"},
		// A ref node's comment gives the bytes of its dtype and shape.
		{"da56430002 85 00 01 67 666c6f61743332 82 1904 00 02 00", `1447231490([0, 1, "float32", [1024, 2], 0]) / 8192 bytes /`},
		{"da56430002 85 00 01 63 666f6f 81 01 00", `1447231490([0, 1, "foo", [1], 0])`},
		// A token is shortened only where a batch descriptor has it.
		{"da56430000 83 01 80 81 85 61 73 42 0102 43 a0a1a2 01 02", `1447231488([1, [], [["s", h'0102', h'a0a1…', 1, 2]]])`},
		{"83 01 80 81 85 61 73 42 0102 43 a0a1a2 01 02", `[1, [], [["s", h'0102', h'a0a1a2', 1, 2]]]`},
		{"81 da56430000 83 01 80 81 85 61 73 42 0102 43 a0a1a2 01 02", `[1447231488([1, [], [["s", h'0102', h'a0a1a2', 1, 2]]])]`},
	}
	for _, tt := range tests {
		got, err := Diagnose(malformedHex(t, tt.hex), DiagOptions{})
		if err != nil || got != tt.want {
			t.Errorf("%s:\n got %s, %v\nwant %s", tt.hex, got, err, tt.want)
		}
	}
}

// In Full mode, Diagnose writes what another implementation writes for
// the same bytes (fxamacker/cbor, with float width indicators), apart from
// the two choices documented on Diagnose: width indicators on NaN and
// Infinity, and printable non-ASCII text as it is.
func TestDiagnoseFullMatchesFxamacker(t *testing.T) {
	for name, data := range diagCorpus(t) {
		got, err := Diagnose(data, DiagOptions{Full: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want, ok := fxDiagnose(data); ok && got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

var (
	fxDiag = MustMode(cbor.DiagOptions{FloatPrecisionIndicator: true, MaxNestedLevels: 1024}.DiagMode())
	fxDec  = MustMode(cbor.DecOptions{MaxNestedLevels: 1024}.DecMode())
)

// fxDiagnose returns fxamacker's notation, and false where it differs from
// ours by design (NaN, Infinity, non-ASCII text).
func fxDiagnose(data []byte) (string, bool) {
	s, err := fxDiag.Diagnose(data)
	if err != nil || strings.Contains(s, "NaN") || strings.Contains(s, "Infinity") || strings.Contains(s, `\u`) {
		return "", false
	}
	return s, true
}

// diagCorpus is every golden message, the sample message and a relay's
// message.
func diagCorpus(t testing.TB) map[string][]byte {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.cbor"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	corpus := map[string][]byte{"sampleMessage": sampleMessage(t)}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		corpus[filepath.Base(p)] = b
	}
	return corpus
}

func TestDiagnoseWidth(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenDir, "refs.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Diagnose(data, DiagOptions{Width: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := `1447231488([
  1,
  {
    "model": {
      "b": 1447231490([0, 1, "float32", [16], 0]) / 64 bytes /,
      "w": 1447231490([0, 0, "float32", [32, 32], 0]) / 4096 bytes /,
      "emb": 1447231490([1, 0, "bfloat16", [2, 3], 1]) / 12 bytes /,
      "tied": 1447231490([0, 0, "float32", [32, 32], 0]) / 4096 bytes /
    },
    "round": 3
  },
  [
    ["http://127.0.0.1:7001", h'000102030405400780090a0b0c0d0e0f', h'a0a1…', 2, 4160],
    ["http://127.0.0.1:7002", h'404142434445404780494a4b4c4d4e4f', h'c0c1…', 1, 12]
  ]
])`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	// Breaking lines changes nothing but white space, and a line passes
	// the width only where one item cannot be broken.
	breaks := regexp.MustCompile(`\n *`)
	for name, data := range diagCorpus(t) {
		flat, err := Diagnose(data, DiagOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, width := range []int{1, 20, 40, 80, 100} {
			got, err := Diagnose(data, DiagOptions{Width: width})
			if err != nil {
				t.Fatal(err)
			}
			if strings.ReplaceAll(breaks.ReplaceAllString(got, ""), ", ", ",") != strings.ReplaceAll(flat, ", ", ",") {
				t.Errorf("%s, width %d: content differs from the one-line form:\n%s", name, width, got)
			}
			for line := range strings.SplitSeq(got, "\n") {
				if len([]rune(line)) > width && strings.ContainsAny(strings.TrimRight(line, "[{(,"), "[{") && width >= 80 {
					t.Errorf("%s, width %d: long line holds a list or map: %q", name, width, line)
				}
			}
		}
	}
}

func TestDiagnoseMalformed(t *testing.T) {
	bomb := strings.Repeat("81", DefaultMaxDepth+1) + "00"
	tests := []struct {
		name string
		hex  string
		kind Kind
	}{
		{"empty", "", KindSyntax},
		{"trailing bytes", "01 02", KindSyntax},
		{"truncated head", "19 01", KindSyntax},
		{"truncated string", "44 0102", KindSyntax},
		{"list longer than the data", "9b4000000000000000 00", KindSyntax},
		{"map longer than the data", "bb8000000000000000 00", KindSyntax},
		{"indefinite list", "9f 01 ff", KindSyntax},
		{"indefinite bytes", "5f 41 00 ff", KindSyntax},
		{"lone break", "ff", KindSyntax},
		{"reserved additional information", "1c", KindSyntax},
		{"two-byte simple below 32", "f814", KindSyntax},
		{"invalid UTF-8", "62 c328", KindSyntax},
		{"typed array truncated", "d855 44 0000", KindSyntax},
		{"depth beyond the limit", "E(" + bomb + ")", KindLimit},
		{"tags beyond the limit", "E(" + strings.Repeat("d863", DefaultMaxDepth+1) + "00)", KindLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := malformedHex(t, tt.hex)
			for _, opts := range []DiagOptions{{}, {Full: true, Width: 10}} {
				s, err := Diagnose(data, opts)
				if KindOf(err) != tt.kind || s != "" {
					t.Fatalf("got %q, %v; want kind %v", s, err, tt.kind)
				}
				if !strings.HasPrefix(err.Error(), "core: ") {
					t.Fatalf("error %q lacks the package prefix", err)
				}
			}
		})
	}
	// The decoder draws the line at the same depth.
	if _, err := Unmarshal(malformedHex(t, "E("+bomb+")")); !errors.Is(err, ErrLimit) {
		t.Fatalf("decoder: got %v, want ErrLimit", err)
	}
	ok := malformedHex(t, "E("+bomb[2:]+")")
	if _, err := Unmarshal(ok); err != nil {
		t.Fatal(err)
	}
	if _, err := Diagnose(ok, DiagOptions{}); err != nil {
		t.Fatalf("depth the decoder accepts: %v", err)
	}
	if _, err := Diagnose([]byte{0}, DiagOptions{Width: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative width: got %v, want ErrInvalid", err)
	}
}

func TestDiagnoseTruncatedAtEveryByte(t *testing.T) {
	data := sampleMessage(t)
	for i := range len(data) {
		s, err := Diagnose(data[:i], DiagOptions{})
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindSyntax || s != "" {
			t.Fatalf("cut at %d of %d: got %q, %v; want a syntax error", i, len(data), s, err)
		}
		if e.Offset < 0 || e.Offset > int64(i) {
			t.Fatalf("cut at %d: offset of %v is out of range", i, err)
		}
	}
}

func TestDiagnoseDoesNotAllocateFromDeclaredLengths(t *testing.T) {
	for _, h := range []string{"9b4000000000000000 00010203040506070809", "bb4000000000000000 00010203040506070809", "5b4000000000000000 00"} {
		data := malformedHex(t, h)
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := Diagnose(data, DiagOptions{}); err == nil {
				t.Fatal("no error")
			}
		})
		if allocs > 8 {
			t.Errorf("%s: %.0f allocations", h, allocs)
		}
	}
}

// FuzzDiagnose checks that Diagnose never panics, accepts every message
// the decoder accepts, accepts only well-formed CBOR, and in Full mode
// agrees with fxamacker/cbor.
func FuzzDiagnose(f *testing.F) {
	for _, data := range diagCorpus(f) {
		f.Add(data)
	}
	// Lenient forms and malformed input of the golden files.
	for _, glob := range []string{"lenient/*.cbor", "bad/*.cbor"} {
		files, _ := filepath.Glob(filepath.Join(goldenDir, glob))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	for _, h := range []string{"c349010000000000000000", "fa33d6bf95", "d841 42 0001", "9f 01 ff", "da56430002 85 00 01 67 666c6f61743332 82 1904 00 02 00"} {
		f.Add(malformedHex(f, h))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Diagnose(data, DiagOptions{Width: 40})
		if err != nil {
			if s != "" || KindOf(err) == KindNone {
				t.Fatalf("got %q with error %v", s, err)
			}
			if _, derr := passThrough.Decode(data); derr == nil {
				t.Fatalf("the decoder accepts what Diagnose rejects: %v", err)
			}
			return
		}
		if err := fxDec.Wellformed(data); err != nil {
			t.Fatalf("Diagnose accepts what is not well-formed: %v", err)
		}
		full, err := Diagnose(data, DiagOptions{Full: true})
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := fxDiagnose(data); ok && full != want {
			t.Fatalf("got  %s\nwant %s", full, want)
		}
	})
}

func ExampleDiagnose() {
	w, _ := ArrayOf([]int{2, 2}, []float32{1, 2, 3, 4})
	data, _ := Marshal(map[string]any{"round": 3, "w": w, "lr": float32(0.5)})
	s, _ := Diagnose(data, DiagOptions{Width: 60})
	fmt.Println(s)
	// Output:
	// 1447231488([
	//   1,
	//   {
	//     "w": 40([[2, 2], 85(h'…') / float32, 16 bytes /]),
	//     "lr": 0.5_2,
	//     "round": 3
	//   },
	//   []
	// ])
}
