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
		checkSkeletonAgrees(t, data, v, err)
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

// checkSkeletonAgrees checks that a binding's path, DecMode.Skeleton,
// agrees with Decode: the same error kind and offset, or a skeleton and
// slots that stand for the same value. Both are one walk of the message
// (decoder), which reads and checks every item once; this holds its two
// outputs, Go values and skeleton bytes, to each other.
func checkSkeletonAgrees(t *testing.T, data []byte, v any, derr error) {
	p, err := zcSkeleton.Skeleton(data, 8, 8, nil)
	if derr != nil {
		de, _ := errors.AsType[*Error](derr)
		e, ok := errors.AsType[*Error](err)
		if !ok || de == nil || e.Kind != de.Kind || e.Offset != de.Offset {
			t.Fatalf("Decode: %v; Skeleton: %v", derr, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Decode succeeded, Skeleton: %v", err)
	}
	want, err := Marshal(v)
	if err != nil {
		return // FuzzDecode reports it
	}
	got, err := Marshal(skeletonValue(t, p))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the skeleton's value encodes to %x (%v), Decode's to %x", got, err, want)
	}
}

var zcSkeleton = MustMode(DecOptions{ZeroCopy: true, PassThrough: true, MaxByteLen: 1 << 20, MaxArrayBytes: 1 << 20}.DecMode())
