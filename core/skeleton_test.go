package core

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	skelEnc = MustMode(EncOptions{Slots: true, MaxDepth: 4096}.EncMode())
	skelDec = MustMode(DecOptions{Slots: true, MaxDepth: 4096}.DecMode())
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// skelLazy is a lazy ref whose descriptor has recognisable bytes.
func skelLazy() *LazyRef {
	l := &LazyRef{Batch: BatchRef{Source: "s", Items: 3, Bytes: 100}, Item: 2, DType: DTypeFloat32, Shape: []int{2, 3}, Order: ColumnMajor}
	for i := range l.Batch.RefID {
		l.Batch.RefID[i] = byte(i)
	}
	for i := range l.Batch.Token {
		l.Batch.Token[i] = 0xa0 + byte(i%16)
	}
	return l
}

// TestSkeletonVectors: what a skeleton looks like, item by item (the
// vectors of docs/wire-format.md §4.1), and that each decodes back.
func TestSkeletonVectors(t *testing.T) {
	big70 := new(big.Int).Lsh(big.NewInt(1), 70)
	l := skelLazy()
	// More lazy refs: of l's batch; of another batch, held elsewhere; of
	// l's ref id with another descriptor (re-pointed at a holder).
	l2 := &LazyRef{Batch: l.Batch, DType: DTypeInt8, Shape: []int{}}
	m := &LazyRef{Batch: BatchRef{Source: "t", Items: 1, Bytes: 1, Holder: "h"}, DType: DTypeUint8, Shape: []int{1}}
	for i := range m.Batch.RefID {
		m.Batch.RefID[i] = 0x11
	}
	held := *l
	held.Batch.Holder = "h"
	const (
		fullL  = "da56430104 89 6173 50000102030405060708090a0b0c0d0e0f 5820a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf 03 1864 02 67666c6f61743332 820203 01"
		fullM  = "da56430104 8a 6174 5011111111111111111111111111111111 5820" + "0000000000000000000000000000000000000000000000000000000000000000" + " 01 01 00 6575696e7438 8101 00 6168"
		fullLH = "da56430104 8a 6173 50000102030405060708090a0b0c0d0e0f 5820a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf 03 1864 02 67666c6f61743332 820203 01 6168"
	)
	for _, c := range []struct {
		name string
		v    any
		hex  string
	}{
		{"null, bools, ints", []any{nil, false, true, int64(-1), uint64(math.MaxUint64)}, "85 f6 f4 f5 20 1bffffffffffffffff"},
		{"bignum", big70, "c2 49 400000000000000000"},
		{"float64", 1.5, "fb 3ff8000000000000"},
		{"float32", float32(1.5), "da56430101 1a3fc00000"},
		{"float16", Float16From(1.5), "da56430100 193e00"},
		{"text map", map[string]any{"b": int64(1), "a": "x"}, "a2 6161 6178 6162 01"},
		{"pairs", Map{{true, int64(2)}, {int64(1), "a"}, {[]byte{9}, nil}}, "da56430102 86 01 6161 4109 f6 f5 02"},
		{"slot", SlotIndex(300), "da56430003 19012c"},
		{"object", Object{Name: "p", Data: []any{}}, "da56430001 82 6170 80"},
		{"0-d array", mustArray(t, DTypeUint8, []int{}, RowMajor, []byte{7}), "da56430186 4107"},
		{"0-d float32", mustArray(t, DTypeFloat32, []int{}, RowMajor, []byte{0, 0, 0xc0, 0x3f}), "da5643018c 440000c03f"},
		{"1-d array", mustArray(t, DTypeUint8, []int{1}, RowMajor, []byte{7}), "da56430103 84 06 8101 00 4107"},
		{"column-major array", mustArray(t, DTypeInt8, []int{2, 2}, ColumnMajor, []byte{1, 2, 3, 4}), "da56430103 84 02 820202 01 4401020304"},
		{"collapsed order", mustArray(t, DTypeInt8, []int{1, 2}, ColumnMajor, []byte{1, 2}), "da56430103 84 02 820102 00 420102"},
		{"lazy ref", l, fullL},
		// A batch crosses in full once; later lazy refs name it by number.
		{"lazy refs of one batch", []any{l, l2, l}, "83 " + fullL + " da56430104 85 00 00 64696e7438 80 00 da56430104 85 00 02 67666c6f61743332 820203 01"},
		{"lazy refs of two batches", []any{l, m, l2, m}, "84 " + fullL + fullM + " da56430104 85 00 00 64696e7438 80 00 da56430104 85 01 00 6575696e7438 8101 00"},
		{"one ref id, two descriptors", []any{l, &held, l, &held}, "84 " + fullL + fullLH + " da56430104 85 00 02 67666c6f61743332 820203 01 da56430104 85 01 02 67666c6f61743332 820203 01"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := skelEnc.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, c.hex); !bytes.Equal(got, want) {
				t.Fatalf("skeleton\n got %x\nwant %x", got, want)
			}
			back, err := skelDec.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, normalise(c.v)) {
				t.Fatalf("decoded %#v, want %#v", back, c.v)
			}
		})
	}
}

// normalise is v as a skeleton decode returns it: unsigned integers up to
// MaxInt64 as int64, bignums within 64 bits as plain integers.
func normalise(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalise(x[i])
		}
		return out
	case Map: // decoded in skeleton (sorted) order
		sorted, _ := sortPairs(x)
		out := make(Map, len(sorted))
		for i, p := range sorted {
			k, _ := skelDec.Decode(p.key)
			out[i] = Pair{k, normalise(p.val)}
		}
		return out
	case *Array:
		if wireOrder(x.Shape, x.Order) != x.Order {
			c := *x
			c.Order = RowMajor
			return &c
		}
	case *LazyRef:
		c := *x
		c.Order = wireOrder(x.Shape, x.Order)
		return &c
	}
	return v
}

// TestSkeletonLenient: a binding's CBOR library need not write shortest
// forms, sorted keys or float64 heads; the skeleton means the same value,
// and the message written from it is deterministic.
func TestSkeletonLenient(t *testing.T) {
	for _, c := range []struct{ skel, msg string }{
		// a map with 8-byte heads and unsorted keys
		{"bb0000000000000002 6162 1b0000000000000001 6161 1b0000000000000002", "a2 6161 02 6162 01"},
		// floats of every width are float64s
		{"83 f93e00 fa3fc00000 fb3ff8000000000000", "83 fb3ff8000000000000 fb3ff8000000000000 fb3ff8000000000000"},
		// a plain map with keys that are not all text is a Map
		{"a2 f5 01 01 02", "a2 01 02 f5 01"},
		// bignums within 64 bits, with leading zeros
		{"c2 43 000001", "01"},
	} {
		v, err := skelDec.Decode(unhex(t, c.skel))
		if err != nil {
			t.Fatalf("%s: %v", c.skel, err)
		}
		got, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, "da56430000 83 01"+c.msg+"80"); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.skel, got, want)
		}
	}
}

// TestSkeletonBad: what a skeleton decoder refuses, with the kind a
// binding's caller sees.
func TestSkeletonBad(t *testing.T) {
	// A lazy ref in full: item 0 of a batch of one item.
	fullZero := "da56430104 89 6173 50" + strings.Repeat("00", 16) + " 5820" + strings.Repeat("00", 32) + " 01 08 00 6575696e7438 8108 00"
	for _, c := range []struct {
		name, hex string
		kind      Kind
	}{
		{"envelope", "da56430000 83 01 00 80", KindProtocol},
		{"ref node", "da56430002 85 00 00 656675696e74 80 00", KindProtocol},
		{"RFC 8746 array", "d828 82 81 01 d840 41 07", KindProtocol},
		{"bare typed array", "d840 41 07", KindProtocol},
		{"unknown tag", "d863 00", KindUnknownTag},
		{"undefined", "f7", KindProtocol},
		{"odd pairs", "da56430102 83 01 02 03", KindProtocol},
		{"pairs not a list", "da56430102 a0", KindProtocol},
		{"float key", "da56430102 82 fb3ff8000000000000 01", KindProtocol},
		{"list key", "a1 80 01", KindProtocol},
		{"duplicate pairs key", "da56430102 84 01 02 1801 03", KindSyntax},
		{"duplicate text key", "a2 6161 01 6161 02", KindSyntax},
		{"float16 bits", "da56430100 1a00010000", KindProtocol},
		{"float32 bits", "da56430101 1b0000000100000000", KindProtocol},
		{"float32 of text", "da56430101 6161", KindProtocol},
		{"slot index", "da56430003 1b0000000100000000", KindProtocol},
		{"array of 3", "da56430103 83 06 80 00", KindProtocol},
		{"array dtype 0", "da56430103 84 00 80 00 4107", KindMismatch},
		{"array dtype 99", "da56430103 84 1863 80 00 4107", KindMismatch},
		{"array order 2", "da56430103 84 06 80 02 4107", KindProtocol},
		{"array data not bytes", "da56430103 84 06 80 00 6107", KindMismatch},
		{"array length", "da56430103 84 06 8102 00 4107", KindMismatch},
		{"array bool 2", "da56430103 84 01 80 00 4102", KindMismatch},
		{"array shape overflows", "da56430103 84 06 821b7fffffffffffffff 1b7fffffffffffffff 00 40", KindMismatch},
		{"lazy ref item", "da56430104 89 6173 50" + strings.Repeat("00", 16) + " 5820" + strings.Repeat("00", 32) + " 01 08 01 6575696e7438 8108 00", KindProtocol},
		{"lazy ref items", "da56430104 89 6173 50" + strings.Repeat("00", 16) + " 5820" + strings.Repeat("00", 32) + " 1b0000000100000000 08 00 6575696e7438 8108 00", KindProtocol},
		{"lazy ref ref_id", "da56430104 89 6173 4f" + strings.Repeat("00", 15) + " 5820" + strings.Repeat("00", 32) + " 01 08 00 6575696e7438 8108 00", KindProtocol},
		{"lazy ref dtype", "da56430104 89 6173 50" + strings.Repeat("00", 16) + " 5820" + strings.Repeat("00", 32) + " 01 08 00 6575696e7439 8108 00", KindMismatch},
		{"lazy ref of 8", "da56430104 88 6173 50" + strings.Repeat("00", 16) + " 5820" + strings.Repeat("00", 32) + " 01 08 00 6575696e7438 8108", KindProtocol},
		{"lazy ref of 6", "82 " + fullZero + " da56430104 86 00 00 6575696e7438 8108 00 00", KindProtocol},
		{"lazy ref numbers no batch", "da56430104 85 00 00 6575696e7438 8108 00", KindProtocol},
		{"lazy ref numbers a later batch", "82 " + fullZero + " da56430104 85 01 00 6575696e7438 8108 00", KindProtocol},
		{"lazy ref numbers a batch twice", "83 " + fullZero + fullZero + " da56430104 85 01 00 6575696e7438 8108 00", KindProtocol},
		{"lazy ref by number, item", "82 " + fullZero + " da56430104 85 00 01 6575696e7438 8108 00", KindProtocol},
		{"lazy ref by number, text", "82 " + fullZero + " da56430104 85 6173 00 6575696e7438 8108 00", KindProtocol},
		{"lazy ref by number, dtype", "82 " + fullZero + " da56430104 85 00 00 6575696e7439 8108 00", KindMismatch},
		{"lazy ref by number, order", "82 " + fullZero + " da56430104 85 00 00 6575696e7438 8108 02", KindProtocol},
		{"lazy ref by number, overflow", "82 " + fullZero + " da56430104 85 00 00 6575696e7438 821b7fffffffffffffff 1b7fffffffffffffff 00", KindMismatch},
		{"0-d array of 2 bytes", "da56430186 420707", KindMismatch},
		{"0-d bool 2", "da56430181 4102", KindMismatch},
		{"0-d of text", "da56430186 6107", KindMismatch},
		{"0-d of dtype 18", "da56430192 4107", KindUnknownTag},
		{"truncated", "da56430101", KindSyntax},
		{"trailing", "01 02", KindSyntax},
		{"indefinite", "9f ff", KindSyntax},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := skelDec.Decode(unhex(t, c.hex))
			if err == nil || v != nil {
				t.Fatalf("decoded %#v, %v; want a %v error", v, err, c.kind)
			}
			if got := KindOf(err); got != c.kind {
				t.Fatalf("%v: kind %v, want %v", err, got, c.kind)
			}
		})
	}
	if _, err := skelDec.Decode(unhex(t, "da56430103 84 06 80 00 4107")); err != nil {
		t.Fatalf("the good twin of the array cases: %v", err)
	}
	for _, h := range []string{"82 " + fullZero, "83 " + fullZero + fullZero} {
		if _, err := skelDec.Decode(unhex(t, h+" da56430104 85 00 00 6575696e7438 8108 00")); err != nil {
			t.Fatalf("the good twin of the lazy ref cases: %v", err)
		}
	}
}

// TestSkeletonTagsInMessage: no skeleton tag is valid in a message.
func TestSkeletonTagsInMessage(t *testing.T) {
	for _, tag := range []string{"da56430003 00", "da56430100 00", "da56430101 00", "da56430102 80", "da56430103 80", "da56430104 80", "da56430181 4101", "da56430191 4101"} {
		_, err := Unmarshal(envelopeHex(t, tag))
		if !errors.Is(err, ErrUnknownTag) {
			t.Errorf("%s in a message: %v, want KindUnknownTag", tag, err)
		}
		if e, ok := errors.AsType[*Error](err); !ok || e.Offset != 7 {
			t.Errorf("%s: offset of %v, want 7", tag, err)
		}
	}
}

// TestSkeletonDepth: a value nested MaxDepth deep as a message counts it
// crosses as a skeleton, though a Map nests twice as deep there.
func TestSkeletonDepth(t *testing.T) {
	var v any = int64(1)
	for range 4096 {
		v = Map{{int64(0), v}}
	}
	skel, err := skelEnc.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	back, err := skelDec.Decode(skel)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := MustMode(EncOptions{MaxDepth: 4096}.EncMode()).Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MustMode(DecOptions{MaxDepth: 4096}.DecMode()).Decode(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := MustMode(EncOptions{Slots: true, MaxDepth: 4095}.EncMode()).Marshal(v); !errors.Is(err, ErrLimit) {
		t.Fatalf("4096 Maps with MaxDepth 4095: %v, want KindLimit", err)
	}
	deep := bytes.Repeat([]byte{0x81}, 2*4096+2)
	if _, err := skelDec.Decode(append(deep, 0x01)); !errors.Is(err, ErrLimit) {
		t.Fatalf("skeleton nested 8194 deep: %v, want KindLimit", err)
	}
}

// TestSkeletonExcludesByRef: a skeleton is not a message by reference.
func TestSkeletonExcludesByRef(t *testing.T) {
	if _, err := (EncOptions{Slots: true, ByRef: true, Source: "s"}).EncMode(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Slots with ByRef: %v, want KindInvalid", err)
	}
}

// FuzzSkeleton: the skeleton decoder never panics, and what it accepts
// writes a skeleton that decodes to the same value.
func FuzzSkeleton(f *testing.F) {
	for _, h := range []string{
		"a2 6161 01 6162 da56430003 00",
		"da56430102 84 01 6161 f5 fb3ff8000000000000",
		"da56430103 84 06 820102 01 420102",
		"da56430104 89 6173 50" + strings.Repeat("00", 16) + " 5820" + strings.Repeat("00", 32) + " 01 08 00 6575696e7438 8108 00",
		"83 da56430100 193e00 da56430101 1a3fc00000 da56430001 82 6170 80",
	} {
		f.Add(unhex(f, h))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := skelDec.Decode(data)
		if err != nil {
			if e, ok := errors.AsType[*Error](err); !ok || !e.Kind.Valid() {
				t.Fatalf("error %v (%T) is not a *Error with a kind", err, err)
			}
			return
		}
		skel, err := skelEnc.Marshal(v)
		if err != nil {
			return // e.g. a lazy ref naming item 3 of 2: refused on encode
		}
		v2, err := skelDec.Decode(skel)
		if err != nil {
			t.Fatalf("skeleton written from a decoded one does not decode: %v", err)
		}
		skel2, err := skelEnc.Marshal(v2)
		if err != nil || !bytes.Equal(skel, skel2) {
			t.Fatalf("skeleton is not stable: %v", err)
		}
	})
}

// skeletonValue is the value a plan from DecMode.Skeleton stands for: its
// skeleton decoded, each slot's bytes in new memory, each referenced slot
// a lazy ref again.
func skeletonValue(t testing.TB, p *Plan) any {
	t.Helper()
	if p.Body != nil {
		t.Fatal("a skeleton plan has a Body")
	}
	v, err := skelDec.Decode(p.Skeleton.Bytes())
	if err != nil {
		t.Fatalf("the skeleton does not decode: %v", err)
	}
	v, err = ReplaceSlots(v, func(i SlotIndex) (any, error) {
		s := &p.Slots[i]
		if s.Ref() {
			return &LazyRef{Batch: p.Batches[s.Batch], Item: s.Item, DType: s.DType, Shape: s.Shape, Order: s.Order}, nil
		}
		dst := make([]byte, s.Bytes)
		if err := s.CopyTo(dst); err != nil {
			return nil, err
		}
		if s.DType == DTypeInvalid {
			return dst, nil
		}
		return NewArray(s.DType, s.Shape, s.Order, dst)
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// skeletonModes are the ways a binding asks for a skeleton: every array
// a slot, or none; long byte strings as slots, or not.
var skeletonModes = []struct{ arrays, bytes int64 }{{0, 0}, {1 << 62, 0}, {16, 1}, {5, 64}}

// TestSkeletonOfGoldenFiles: a message's skeleton and slots stand for the
// value Decode gives, whatever crosses inside the skeleton: the message
// written from them is the golden one (the twin, for a lenient file).
func TestSkeletonOfGoldenFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.cbor"))
	lenient, _ := filepath.Glob(filepath.Join(goldenDir, lenientDir, "*.cbor"))
	if len(files) < 40 || len(lenient) < 10 {
		t.Fatalf("%d golden and %d lenient files", len(files), len(lenient))
	}
	fetching := MustMode(DecOptions{}.DecMode()) // refs become slots to download
	for _, path := range append(files, lenient...) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := passThrough.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []*DecMode{passThrough, fetching} {
			for _, sm := range skeletonModes {
				p, err := m.Skeleton(data, sm.arrays, sm.bytes, nil)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				got, err := Marshal(skeletonValue(t, p))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s (%+v): the skeleton's message\n %x\nwant\n %x", path, sm, clip(got), clip(want))
				}
			}
		}
	}
}

// TestSkeletonOfBadFiles: DecMode.Skeleton refuses every bad golden file
// with the kind and offset Decode reports; an unregistered typed object
// too, when the mode refuses unknown types (a binding that keeps its own
// registry leaves UnknownTypes at its default).
func TestSkeletonOfBadFiles(t *testing.T) {
	for _, c := range badCases(t) {
		m, err := c.opts.decOptions().DecMode()
		if err != nil {
			t.Fatal(err)
		}
		for _, sm := range skeletonModes {
			p, err := m.Skeleton(c.data, sm.arrays, sm.bytes, nil)
			e, ok := errors.AsType[*Error](err)
			if !ok || p != nil || e.Kind != c.kind || e.Offset != int64(c.offset) {
				t.Fatalf("%s (%+v): got %v, %v; want kind %v at offset %d", c.name, sm, p, err, c.kind, c.offset)
			}
		}
	}
}

// TestSkeletonMaps: text keys out of order, repeated, or followed by keys
// of other kinds are checked as Decode checks them.
func TestSkeletonMaps(t *testing.T) {
	for _, c := range []struct {
		body string
		kind Kind // 0: decodes
	}{
		{"a3 6162 01 6161 02 6163 03", 0},                       // unsorted
		{"a3 6161 01 6162 02 6161 03", KindSyntax},              // "a" twice, out of order
		{"a2 6161 01 786161 02", KindSyntax},                    // "a" twice, one with a long head
		{"a3 6161 01 01 02 6162 03", 0},                         // text, int, text: a Map
		{"a3 6161 01 01 02 6161 03", KindSyntax},                // "a" twice around an int
		{"a3 6162 01 6161 02 f5 03", 0},                         // unsorted text, then a bool
		{"a3 6162 01 6161 02 7862 03", KindSyntax},              // "b" twice after "a": the set, not the order
		{"a2 01 02 1801 03", KindSyntax},                        // 1 twice
		{"a2 6161 01 80 02", KindProtocol},                      // a list key
		{"a2 6161 d863 00 80 02", KindUnknownTag},               // the value's error comes first
		{"a2 6161 4c" + strings.Repeat("00", 12) + " 01 02", 0}, // a long byte string inside
		{"a2 60 01 6161 02", 0},                                 // the empty key first
		{"a2 60 01 60 02", KindSyntax},                          // the empty key twice
	} {
		data := envelopeHex(t, c.body)
		v, derr := passThrough.Decode(data)
		for _, sm := range skeletonModes {
			p, err := passThrough.Skeleton(data, sm.arrays, sm.bytes, nil)
			if c.kind != 0 {
				de, _ := errors.AsType[*Error](derr)
				e, ok := errors.AsType[*Error](err)
				if !ok || e.Kind != c.kind || de == nil || e.Offset != de.Offset {
					t.Fatalf("%s: skeleton %v, decode %v; want kind %v at the same offset", c.body, err, derr, c.kind)
				}
				continue
			}
			if err != nil || derr != nil {
				t.Fatalf("%s: %v, %v", c.body, err, derr)
			}
			got, _ := Marshal(skeletonValue(t, p))
			want, _ := Marshal(v)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: %x, want %x", c.body, got, want)
			}
		}
	}
}

// TestMapPairsInMessageOrder: a map turns into a Map at its first key
// that is not text, with the text keys before it in message order.
func TestMapPairsInMessageOrder(t *testing.T) {
	for _, c := range []struct {
		body string
		want any
	}{
		{"a3 6162 01 6161 02 01 03", Map{{"b", int64(1)}, {"a", int64(2)}, {int64(1), int64(3)}}},
		{"a3 60 01 f5 02 6161 03", Map{{"", int64(1)}, {true, int64(2)}, {"a", int64(3)}}},
		{"a2 60 01 6161 02", map[string]any{"": int64(1), "a": int64(2)}},
	} {
		v, err := passThrough.Decode(envelopeHex(t, c.body))
		if err != nil || !reflect.DeepEqual(v, c.want) {
			t.Errorf("%s: %#v, %v; want %#v", c.body, v, err, c.want)
		}
	}
}

// TestSkeletonOfManySmallArrays: arrays under the threshold cost no slot.
func TestSkeletonOfManySmallArrays(t *testing.T) {
	list := make([]any, 1000)
	for i := range list {
		list[i] = mustArray(t, DTypeUint8, []int{}, RowMajor, []byte{byte(i)})
	}
	list = append(list, mustArray(t, DTypeFloat32, []int{4}, RowMajor, make([]byte, 16)))
	data, err := Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	p, err := passThrough.Skeleton(data, 16, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Slots) != 1 || p.Slots[0].Bytes != 16 {
		t.Fatalf("%d slots, want the one 16-byte array", len(p.Slots))
	}
	if _, err := skelDec.Skeleton(data, 0, 0, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Skeleton of a skeleton mode: %v, want KindInvalid", err)
	}
}

// TestSkeletonOfManyRefs: the skeleton of a message of many references
// carries each batch's descriptor once, whatever order the refs come in
// (a token is 32 bytes: a descriptor per ref would be five times the
// message), and stands for the value Decode gives.
func TestSkeletonOfManyRefs(t *testing.T) {
	var batches [2]BatchRef
	for i := range batches {
		batches[i] = BatchRef{Source: fmt.Sprintf("http://127.0.0.1:%d", i+1), Items: 1000, Bytes: 1000}
		batches[i].RefID[0], batches[i].Token[0] = byte(i+1), byte(i+1)
	}
	list := make([]any, 2000)
	for i := range list {
		list[i] = &LazyRef{Batch: batches[i%2], Item: (i * 7) % 1000, DType: DTypeInt8, Shape: []int{1}}
	}
	msg, err := Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	v, err := passThrough.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Marshal(v)
	if err != nil || !bytes.Equal(want, msg) {
		t.Fatalf("the message decoded and encoded again differs: %v", err)
	}
	p, err := passThrough.Skeleton(msg, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	skel := p.Skeleton.Bytes()
	if len(skel) > len(msg) {
		t.Fatalf("the skeleton of %d refs is %d bytes, the message %d", len(list), len(skel), len(msg))
	}
	for _, b := range batches {
		if n := bytes.Count(skel, b.Token[:]); n != 1 {
			t.Fatalf("the skeleton carries the token of batch %s %d times, want once", b.Source, n)
		}
	}
	got, err := Marshal(skeletonValue(t, p))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the skeleton's value encodes to another message: %v", err)
	}
	// Written from Go values, the same.
	if skel2, err := skelEnc.Marshal(v); err != nil || !bytes.Equal(skel2, skel) {
		t.Fatalf("the skeleton written from the values differs from the message's: %v", err)
	}
}

// TestSkeletonArraysAreCopies: an array inside a skeleton does not alias
// it, even with ZeroCopy: encoded by reference, it outlives the skeleton.
func TestSkeletonArraysAreCopies(t *testing.T) {
	zc := MustMode(DecOptions{Slots: true, ZeroCopy: true}.DecMode())
	for _, h := range []string{"da56430186 4107", "da56430103 84 06 8101 00 4107"} {
		skel := unhex(t, h)
		v, err := zc.Decode(skel)
		if err != nil {
			t.Fatal(err)
		}
		skel[len(skel)-1] = 0xee
		if a := v.(*Array); a.Data[0] != 7 {
			t.Fatalf("%s: the array changed with the skeleton", h)
		}
	}
}

// TestSkeletonKeepsBigInt: a *big.Int crosses a skeleton as a bignum,
// whatever its size, and comes back a *big.Int: a host that encodes
// through a skeleton sees the nesting depth a native encode counts for
// it.
func TestSkeletonKeepsBigInt(t *testing.T) {
	for _, n := range []*big.Int{big.NewInt(5), big.NewInt(-1), new(big.Int).Lsh(big.NewInt(1), 70)} {
		b, err := skelEnc.Marshal([]any{n})
		if err != nil {
			t.Fatal(err)
		}
		v, err := skelDec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := v.([]any)[0].(*big.Int)
		if !ok || got.Cmp(n) != 0 {
			t.Errorf("%v crossed a skeleton as %T %v", n, v.([]any)[0], v.([]any)[0])
		}
	}
}

// TestSkeletonStop: Skeleton asks its stop function every pollEvery
// items, while it checks the message and while it walks it, and ends
// with the error stop returns, as it is; a stop that lets it go on
// changes nothing.
func TestSkeletonStop(t *testing.T) {
	list := make([]any, 10*pollEvery)
	for i := range list {
		list[i] = int64(i)
	}
	data, err := Marshal(map[string]any{"list": list, "tail": "end"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := passThrough.Skeleton(data, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var polls int
	goOn := func() error { polls++; return nil }
	got, err := passThrough.Skeleton(data, 0, 0, goOn)
	if err != nil || !bytes.Equal(got.Skeleton.AppendTo(nil), want.Skeleton.AppendTo(nil)) {
		t.Fatalf("a stop that lets it go on: %v, or another skeleton", err)
	}
	// The message is checked, then walked: each polls about 10 times.
	if polls < 18 || polls > 22 {
		t.Fatalf("%d polls for %d items read twice, want one every %d", polls, len(list), pollEvery)
	}
	errStop := errors.New("stop")
	for _, at := range []int{1, 15} { // while checking, while walking
		n := 0
		_, err := passThrough.Skeleton(data, 0, 0, func() error {
			if n++; n == at {
				return errStop
			}
			return nil
		})
		if err != errStop || n != at {
			t.Fatalf("stopped at poll %d: %v after %d polls, want the stop's own error", at, err, n)
		}
	}
}

// TestSkeletonPlainRuns: a list's small integers and float64s, which the
// walk copies into a skeleton by the run, and the items around them,
// across poll boundaries, give back the message's value: its bytes
// again.
func TestSkeletonPlainRuns(t *testing.T) {
	pattern := []any{int64(0), int64(23), int64(24), int64(-24), int64(-25), int64(255), int64(-256),
		1.5, math.Float64frombits(0x7ff8_0000_dead_beef), math.Inf(-1), float32(2.5), "x", true, nil,
		[]any{int64(1), 2.0}, map[string]any{"a": int64(-1)}}
	list := make([]any, 0, 3*pollEvery)
	for len(list) < 3*pollEvery {
		list = append(list, pattern[len(list)*7%len(pattern)])
		for range len(list) % 50 { // runs of many lengths
			list = append(list, int64(len(list)%24))
		}
	}
	data, err := Marshal(map[string]any{"list": list})
	if err != nil {
		t.Fatal(err)
	}
	p, err := passThrough.Skeleton(data, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := skelDec.Decode(p.Skeleton.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatal("the skeleton's value encodes to other bytes than the message")
	}
	// Integers not in their shortest form, which a decoder accepts, are
	// written in it.
	empty, err := Marshal([]any{})
	if err != nil || !bytes.HasSuffix(empty, unhex(t, "8080")) {
		t.Fatalf("an empty list encodes as %x (%v)", empty, err)
	}
	long := unhex(t, "86 1805 190010 1a00000100 1b0000000000000001 3810 00")
	want := unhex(t, "86 05 10 190100 01 30 00")
	msg := append(append(slices.Clone(empty[:len(empty)-2]), long...), 0x80)
	p, err = passThrough.Skeleton(msg, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Skeleton.AppendTo(nil); !bytes.Equal(got, want) {
		t.Fatalf("skeleton %x, want %x", got, want)
	}
}

// TestValidTextPieces: the scan checks a long text string in pieces,
// polling between them, and tells valid from invalid UTF-8 wherever a
// piece's cut falls: in a character, before it, on a bad byte.
func TestValidTextPieces(t *testing.T) {
	for shift := range 5 {
		text := []byte(strings.Repeat("a", textPiece-shift) + "€ü" + strings.Repeat("b", textPiece) + "z")
		for _, bad := range []int{-1, textPiece - 4, textPiece - 3, textPiece - 2, textPiece - 1, textPiece, textPiece + 1, len(text) - 1} {
			for _, with := range []byte{0x80, 0xff, 0xe2} {
				b := slices.Clone(text)
				if bad >= 0 {
					b[bad] = with
				}
				polls := 0
				s := scanner{poller: poller{stop: func() error { polls++; return nil }}}
				ok, err := s.validText(b)
				if err != nil || ok != utf8.Valid(b) || polls != 2 && ok {
					t.Fatalf("shift %d, byte %d set to %x: valid %v (%v) after %d polls, want %v after 2", shift, bad, with, ok, err, polls, utf8.Valid(b))
				}
			}
		}
	}
	errStop := errors.New("stop")
	s := scanner{poller: poller{stop: func() error { return errStop }}}
	if _, err := s.validText(make([]byte, 3*textPiece)); err != errStop {
		t.Fatalf("a stop between pieces: %v", err)
	}
}

// TestSkeletonRefInKey: a ref node inside a map key, whose Go value the
// walk reads with the skeleton's output set aside, agrees with the same
// item's ref nodes elsewhere as Decode has it (a skeleton walk once read
// the key's ref with the other's record of a ref; FuzzDecode found it).
func TestSkeletonRefInKey(t *testing.T) {
	batches := "81 85 75" + strings.Repeat("30", 21) + " 50" + strings.Repeat("30", 16) +
		" 5820" + strings.Repeat("30", 32) + " 03 1830"
	ref := func(order string) string { return " da5643000285 00 00 67666c6f61743332 8104 " + order + " " }
	zc := MustMode(DecOptions{ZeroCopy: true, PassThrough: true, MaxByteLen: 1 << 20, MaxArrayBytes: 1 << 20}.DecMode())
	for _, c := range []struct{ name, body string }{
		{"value, then key of another order", "a2 30" + ref("00") + ref("01") + "30"},
		{"value, then key alike", "a2 30" + ref("00") + ref("00") + "30"},
		{"key, then value of another order", "a2" + ref("00") + "01 01" + ref("01")},
		{"key, then value alike", "a2" + ref("00") + "01 01" + ref("00")},
		{"in a list key", "a2 30" + ref("00") + "81" + ref("01") + "30"},
		{"two keys", "a2" + ref("00") + "01" + ref("01") + "02"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := unhex(t, "da564300008301 "+c.body+batches)
			v, err := zc.Decode(data)
			if err == nil {
				t.Fatalf("decoded %#v: a ref node is no map key", v)
			}
			checkSkeletonAgrees(t, data, v, err)
		})
	}
}
