package core

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const goldenDir = "../testdata/golden"

// goldenValues are the messages pinned under testdata/golden. Every build
// (Go, wasm, Python) must decode each file and re-encode it byte for byte.
func goldenValues(t testing.TB) map[string]any {
	dtypesMsg := map[string]any{}
	for dt := DTypeBool; dt < dtypeCount; dt++ {
		data := seq(3 * dt.Size())
		if dt == DTypeBool {
			data = []byte{1, 0, 1}
		}
		dtypesMsg[dt.String()] = mustArray(t, dt, []int{3}, RowMajor, data)
	}
	return map[string]any{
		"sample": nil, // filled below from sampleMessage
		"scalars": []any{nil, true, false, 0, 23, 24, -1, -25, int64(-1 << 63), uint64(1<<64 - 1),
			bigInt("0x10000000000000000"), bigInt("-0x10000000000000001"),
			Float16(0x7c00), float32(-0.0), 3.141592653589793, "", "ünïcode", []byte{}, []byte{1, 2, 3}},
		"dtypes": dtypesMsg,
		"shapes": []any{
			mustArray(t, DTypeFloat64, []int{}, RowMajor, seq(8)),
			mustArray(t, DTypeFloat32, []int{0, 3}, RowMajor, nil),
			mustArray(t, DTypeInt16, []int{2, 3}, ColumnMajor, seq(12)),
			mustArray(t, DTypeUint8, []int{1, 1, 1, 2}, RowMajor, seq(2)),
		},
		"keys":   Map{{int64(1), "a"}, {int64(-1), "b"}, {[]byte("k"), "c"}, {false, "d"}, {"s", "e"}, {nil, "f"}},
		"object": Object{Name: "viacodec.test.Point", Data: []any{int64(1), int64(2)}},
		"refs":   goldenRefs(),
	}
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

func TestGolden(t *testing.T) {
	values := goldenValues(t)
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var want []byte
			if name == "sample" {
				want = sampleMessage(t)
			} else {
				var err error
				if want, err = Marshal(v); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(goldenDir, name+".cbor")
			if *update {
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run: go test ./core -run TestGolden -args -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding of %s changed:\n got %x\nwant %x", name, want, got)
			}
			decoded, err := passThrough.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Marshal(decoded)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, got) {
				t.Fatalf("decode + encode of %s is not byte-identical", name)
			}
			// Any standard CBOR decoder parses it.
			if err := cbor.Wellformed(got); err != nil {
				t.Fatalf("fxamacker/cbor: not well-formed: %v", err)
			}
			var generic any
			if err := cbor.Unmarshal(got, &generic); err != nil {
				t.Fatalf("fxamacker/cbor cannot decode it: %v", err)
			}
		})
	}
}
