package core

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// re-encodes to a message that decodes and re-encodes to the same bytes.
// Crashers found by `go test -fuzz` land in testdata/fuzz/FuzzDecode and are
// replayed by every `go test` run.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.cbor"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(sampleMessage(f))
	refs, _ := Marshal(goldenRefs())
	f.Add(refs)
	for _, h := range []string{"E(d828 82 81 02 d855 44 0000803f)", "E(a2 01 01 1801 02)", "E(d863 00)", "E(9b4000000000000000 00)"} {
		f.Add(malformedHex(f, h))
	}
	zc, _ := DecOptions{ZeroCopy: true, PassThrough: true, MaxByteLen: 1 << 20, MaxArrayBytes: 1 << 20}.DecMode()
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := zc.Decode(data)
		if err != nil {
			if v != nil {
				t.Fatal("value returned with an error")
			}
			// KindOf would call any error KindInvalid: the decoder must
			// return a *Error that names its kind itself.
			if e, ok := errors.AsType[*Error](err); !ok || !e.Kind.Valid() {
				t.Fatalf("error %v (%T) is not a *Error with a kind", err, err)
			}
			return
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		v2, err := passThrough.Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		enc2, err := Marshal(v2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v", err)
		}
	})
}
