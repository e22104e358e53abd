package core

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// sampleMessage has every kind of value; the truncation test cuts it at
// every byte.
func sampleMessage(t testing.TB) []byte {
	data, err := Marshal(sampleValue(t))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sampleValue is the value of sampleMessage (golden file sample.cbor).
func sampleValue(t testing.TB) map[string]any {
	a := mustArray(t, DTypeFloat32, []int{2, 2}, RowMajor, seq(16))
	b := mustArray(t, DTypeBFloat16, []int{3, 2}, ColumnMajor, seq(12))
	return map[string]any{
		"round": 3,
		"model": map[string]any{"w": a, "b": b},
		"meta":  Map{{int64(1), "one"}, {[]byte{0xff}, true}},
		"f":     []any{Float16(0x3c00), float32(2.5), 1e300, nil, false},
		"big":   bigInt("0x1000000000000000000000000"),
		"obj":   Object{Name: "t", Data: []byte("x")},
	}
}

func TestTruncatedAtEveryByte(t *testing.T) {
	data := sampleMessage(t)
	if _, err := Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	for i := range len(data) {
		v, err := Unmarshal(data[:i])
		if !errors.Is(err, ErrSyntax) || v != nil {
			t.Fatalf("cut at %d of %d: got %v, %v; want ErrSyntax and no value", i, len(data), v, err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Offset < 0 || e.Offset > int64(i) {
			t.Fatalf("cut at %d: offset of %v is out of range", i, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	bomb := strings.Repeat("81", 10000) + "00"
	tagBomb := strings.Repeat("d863", 10000) + "00"
	tests := []struct {
		name string
		hex  string // full message; "E(...)" wraps a body in an envelope
		kind Kind
	}{
		{"empty", "", KindSyntax},
		{"no envelope", "01", KindProtocol},
		{"envelope not an array of 3", "da56430000 82 01 00", KindProtocol},
		{"unknown version", "da56430000 83 02 00 80", KindProtocol},
		{"version not uint", "da56430000 83 20 00 80", KindProtocol},
		{"trailing bytes", "da56430000 83 01 00 80 00", KindSyntax},
		{"unknown tag", "E(d863 00)", KindUnknownTag},
		{"reserved typed-array tag 76", "E(d84c 40)", KindUnknownTag},
		{"float128 typed array", "E(d857 50 00000000000000000000000000000000)", KindMismatch},
		{"array data not a typed array", "E(d828 82 81 01 c2 41 01)", KindMismatch},
		{"array data untagged", "E(d828 82 81 01 41 01)", KindMismatch},
		{"typed-array tag on non-bytes", "E(d828 82 81 01 d855 01)", KindMismatch},
		{"wrong typed-array tag for shape (float64 tag, 4 bytes)", "E(d828 82 81 01 d856 44 0000803f)", KindMismatch},
		{"data length != size x shape", "E(d828 82 81 02 d855 44 0000803f)", KindMismatch},
		{"bytes not whole elements", "E(d855 43 000080)", KindMismatch},
		{"shape product overflows", "E(d828 82 82 1b4000000000000000 1b4000000000000000 d855 40)", KindMismatch},
		{"dimension overflows int64", "E(d828 82 81 1bffffffffffffffff d840 40)", KindMismatch},
		{"shape not a list", "E(d828 82 01 d855 40)", KindProtocol},
		{"dimension negative", "E(d828 82 81 20 d855 40)", KindProtocol},
		{"tag 40 not a pair", "E(d828 81 81 00)", KindProtocol},
		{"bool element not 0/1", "E(d828 82 81 01 da56430010 41 02)", KindMismatch},
		{"depth bomb", "E(" + bomb + ")", KindLimit},
		{"tag bomb", "E(" + tagBomb + ")", KindLimit},
		{"byte string 2^62 with 10-byte body", "E(5b4000000000000000 00010203040506070809)", KindSyntax},
		{"list of 2^62 items", "E(9b4000000000000000 00010203040506070809)", KindSyntax},
		{"map of 2^62 pairs", "E(bb4000000000000000 00010203040506070809)", KindSyntax},
		{"map of 2^63 pairs", "E(bb8000000000000000 00010203040506070809)", KindSyntax},
		{"text 2^62", "E(7b4000000000000000 00)", KindSyntax},
		{"duplicate text keys", "E(a2 6161 01 6161 02)", KindSyntax},
		{"duplicate int keys", "E(a2 01 01 01 02)", KindSyntax},
		{"duplicate keys, second non-shortest", "E(a2 01 01 1801 02)", KindSyntax},
		{"duplicate keys after a text key", "E(a3 6161 01 01 01 6161 02)", KindSyntax},
		{"non-scalar map key", "E(a1 80 01)", KindProtocol},
		{"invalid UTF-8", "E(62 c328)", KindSyntax},
		{"indefinite-length bytes", "E(5f 41 00 ff)", KindSyntax},
		{"indefinite-length list", "E(9f 01 ff)", KindSyntax},
		{"reserved additional info", "E(1c)", KindSyntax},
		{"break outside indefinite", "E(ff)", KindSyntax},
		{"float map key", "E(a1 fb3ff0000000000000 00)", KindProtocol},
		{"undefined", "E(f7)", KindProtocol},
		{"unassigned simple value", "E(f0)", KindProtocol},
		{"two-byte simple below 32", "E(f814)", KindSyntax},
		{"nested envelope", "E(da56430000 83 01 00 80)", KindProtocol},
		{"object name not text", "E(da56430001 82 01 00)", KindProtocol},
		{"object not a pair", "E(da56430001 81 6161)", KindProtocol},
		{"bignum of text", "E(c2 61 61)", KindProtocol},
		{"batches not a list", "da56430000 83 01 00 a0", KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := malformedHex(t, tt.hex)
			v, err := Unmarshal(data)
			if KindOf(err) != tt.kind || v != nil {
				t.Fatalf("got %v, %v (kind %v); want kind %v and no value", v, err, KindOf(err), tt.kind)
			}
			if !strings.HasPrefix(err.Error(), "core: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// A map key the format does not allow is named in CBOR's terms, not as
// the Go type a decoder would have made of it: a Python or command-line
// user reads these errors too.
func TestBadMapKeyInCBORTerms(t *testing.T) {
	for _, tt := range []struct{ hex, what string }{
		{"E(a1 fb3ff0000000000000 00)", "a float"},
		{"E(a1 f93c00 00)", "a float"},
		{"E(a1 80 01)", "a list"},
		{"E(a1 a0 01)", "a map"},
		{"E(a1 d828 82 81 01 d855 44 0000803f 01)", "an array"},
	} {
		_, err := Unmarshal(malformedHex(t, tt.hex))
		want := "core: map key is " + tt.what + ", not an integer, text, byte string, boolean or null at offset 8"
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", tt.hex, err, want)
		}
	}
}

// malformedHex decodes hex with spaces; E(body) becomes an envelope.
func malformedHex(t testing.TB, s string) []byte {
	t.Helper()
	if strings.HasPrefix(s, "E(") && strings.HasSuffix(s, ")") {
		return envelopeHex(t, s[2:len(s)-1])
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHugeDeclaredLengthDoesNotAllocate(t *testing.T) {
	for _, h := range []string{
		"E(5b4000000000000000 00010203040506070809)",
		"E(9b4000000000000000 00010203040506070809)",
		"E(bb4000000000000000 00010203040506070809)",
	} {
		data := malformedHex(t, h)
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := Unmarshal(data); err == nil {
				t.Fatal("no error")
			}
		})
		if allocs > 8 { // the error value and its message only
			t.Errorf("%s: %.0f allocations", h, allocs)
		}
	}
}

func TestLimits(t *testing.T) {
	list := envelopeHex(t, "83 01 02 03")
	bstr := envelopeHex(t, "44 00010203")
	arrays := envelopeHex(t, "82 d840 44 00010203 d840 44 00010203")
	tests := []struct {
		name string
		opts DecOptions
		data []byte
	}{
		{"MaxElements", DecOptions{MaxElements: 2}, list},
		{"MaxElements 1", DecOptions{MaxElements: 1}, envelopeHex(t, "82 01 02")},
		{"MaxByteLen", DecOptions{MaxByteLen: 3}, bstr},
		{"MaxMessageSize", DecOptions{MaxMessageSize: int64(len(list) - 1)}, list},
		{"MaxArrayBytes", DecOptions{MaxArrayBytes: 7}, arrays},
		{"MaxDepth", DecOptions{MaxDepth: 1}, envelopeHex(t, "81 81 00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.opts.DecMode()
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Decode(tt.data)
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindLimit {
				t.Fatalf("got %v, want ErrLimit", err)
			}
			if tt.name != "MaxMessageSize" && e.Offset < 7 { // 7: the body, after the envelope
				t.Fatalf("limit hit at offset %d, inside the envelope: %v", e.Offset, err)
			}
			if _, err := Unmarshal(tt.data); err != nil {
				t.Fatalf("default limits reject it: %v", err)
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := []DecOptions{
		{MaxDepth: -1}, {MaxDepth: 5000}, {MaxElements: -1}, {MaxByteLen: 1 << 50},
		{MaxMessageSize: -5}, {MaxArrayBytes: -1}, {UnknownTypes: 7},
	}
	for _, o := range bad {
		if _, err := o.DecMode(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", o, err)
		}
	}
	if _, err := (EncOptions{MaxDepth: -1}).EncMode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("EncOptions MaxDepth -1: got %v", err)
	}
	m, err := DecOptions{}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	got := m.Options()
	if got.MaxDepth != DefaultMaxDepth || got.MaxElements != DefaultMaxElements || got.MaxByteLen != DefaultMaxByteLen ||
		got.MaxMessageSize != DefaultMaxMessageSize || got.MaxArrayBytes != DefaultMaxArrayBytes {
		t.Fatalf("defaults not filled in: %+v", got)
	}
}
