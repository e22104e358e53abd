package wasm

// A differential test: the same corpus, decoded and encoded by core and by
// the guest, gives the same value or an error of the same kind and offset.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// corpus returns the inputs by name: the golden files (positive, lenient,
// bad), core's fuzz corpus, generated hostile messages (those of
// BenchmarkDecodeHostile among them, at 64 KiB), and truncations
// and byte flips of the positive golden files.
func corpus(t *testing.T) map[string][]byte {
	in := map[string][]byte{}
	var positive [][]byte
	for _, dir := range []string{"", "lenient", "bad"} {
		files, _ := filepath.Glob(filepath.Join(goldenDir, dir, "*.cbor"))
		for _, p := range files {
			in["golden/"+filepath.Join(dir, filepath.Base(p))] = readFile(t, p)
			if dir == "" {
				positive = append(positive, in["golden/"+filepath.Base(p)])
			}
		}
	}
	fuzz, _ := filepath.Glob("../core/testdata/fuzz/*/*")
	for _, p := range fuzz {
		b, err := fuzzInput(readFile(t, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		in["fuzz/"+filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p)] = b
	}
	if len(positive) < 20 || len(fuzz) == 0 {
		t.Fatalf("%d golden files, %d fuzz inputs", len(positive), len(fuzz))
	}
	for name, b := range hostile(t) {
		in["hostile/"+name] = b
	}
	for _, c := range hostileOf(t, 64<<10) { // BenchmarkDecodeHostile's, smaller
		in["hostile-64KiB/"+c.name] = c.msg
	}
	r := rand.New(rand.NewPCG(1, 2))
	cuts := 12
	if testing.Short() {
		cuts = 4
	}
	for i, msg := range positive {
		for range cuts {
			in[fmt.Sprintf("cut/%d/%d", i, r.IntN(len(msg)))] = msg[:r.IntN(len(msg))]
			flip := bytes.Clone(msg)
			at := r.IntN(len(flip))
			flip[at] ^= byte(1 + r.IntN(255))
			in[fmt.Sprintf("flip/%d/%d", i, at)] = flip
		}
	}
	return in
}

// fuzzInput reads a file of Go's fuzz corpus holding one []byte.
func fuzzInput(b []byte) ([]byte, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, fmt.Errorf("not a fuzz input of one []byte")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	return []byte(s), err
}

// envelope wraps body in a message's envelope with an empty side table:
// 0x56430000([1, body, []]).
func envelope(body []byte) []byte {
	return append(append([]byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01}, body...), 0x80)
}

// head appends a CBOR head of major type major and argument n.
func head(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major<<5|byte(n))
	case n <= 0xff:
		return append(dst, major<<5|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, major<<5|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(dst, major<<5|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, major<<5|27), n)
}

// hostile returns messages built to hurt a decoder: deep nesting, many
// small items, many references, declared lengths beyond the input, too
// many dimensions.
func hostile(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	deep := func(n int) []byte {
		b := bytes.Repeat([]byte{0x81}, n)
		return envelope(append(b, 0x00))
	}
	out["deep-128"], out["deep-129"], out["deep-5000"] = deep(127), deep(129), deep(5000)
	ints := head(nil, 4, 30_000)
	for i := range 30_000 {
		ints = head(ints, 0, uint64(i%1000))
	}
	out["30k-ints"] = envelope(ints)
	zeroD := make([]any, 5_000)
	for i := range zeroD {
		zeroD[i] = &core.Array{DType: core.DTypeInt8, Shape: []int{}, Data: []byte{byte(i)}}
	}
	out["5k-0d-arrays"] = mustMarshal(t, core.EncOptions{}, zeroD)
	refs := make([]any, 5_000)
	for i := range refs {
		refs[i] = &core.Array{DType: core.DTypeInt8, Shape: []int{1}, Data: []byte{byte(i)}}
	}
	out["5k-refs"] = mustMarshal(t, core.EncOptions{ByRef: true, RefThreshold: 1, Source: "http://127.0.0.1:1"}, refs)
	out["array-count-2^62"] = envelope(head(nil, 4, 1<<62))
	out["map-count-2^40"] = envelope(head(nil, 5, 1<<40))
	out["bytes-len-2^50"] = envelope(head(nil, 2, 1<<50))
	shape := head(nil, 4, 65)
	for range 65 {
		shape = head(shape, 0, 1)
	}
	// 40([shape, uint8 typed array of 1 byte])
	out["array-65-dims"] = envelope(append(append(head(head(nil, 6, 40), 4, 2), shape...), 0xd8, 0x40, 0x41, 0x07))
	out["dup-keys"] = envelope([]byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02})
	out["indefinite"] = envelope([]byte{0x9f, 0x01, 0xff})
	return out
}

func mustMarshal(t testing.TB, o core.EncOptions, v any) []byte {
	t.Helper()
	m, err := o.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameAnswer fails the test unless the guest's answer (gv, gerr) is
// core's (nv, nerr): equal values, or errors of the same kind and offset.
func sameAnswer(t *testing.T, what string, gv any, gerr error, nv any, nerr error) bool {
	t.Helper()
	switch {
	case nerr != nil || gerr != nil:
		if core.KindOf(gerr) != core.KindOf(nerr) || abi.OffsetOf(gerr) != abi.OffsetOf(nerr) {
			t.Errorf("%s: guest %v (kind %v, offset %d); core %v (kind %v, offset %d)", what,
				gerr, core.KindOf(gerr), abi.OffsetOf(gerr), nerr, core.KindOf(nerr), abi.OffsetOf(nerr))
			return false
		}
	case !sameValue(t, gv, nv):
		t.Errorf("%s: guest decodes %#v, core %#v", what, gv, nv)
		return false
	}
	return true
}

// TestDifferential decodes every input of the corpus with core and with
// the guest, with and without pass-through, and encodes every value both
// decoded with each: the same values, bytes or errors.
func TestDifferential(t *testing.T) {
	rt := newRuntime(t, Options{})
	in := corpus(t)
	genc, _ := rt.EncMode(core.EncOptions{})
	nenc, _ := core.EncOptions{}.EncMode()
	decoded := 0
	for _, o := range []core.DecOptions{{PassThrough: true}, {}} {
		nm, _ := o.DecMode()
		gm, _ := rt.DecMode(o)
		for name, data := range in {
			what := fmt.Sprintf("%s (pass-through %v)", name, o.PassThrough)
			nv, nerr := nm.Decode(data)
			gv, gerr := gm.Decode(data)
			if !sameAnswer(t, what, gv, gerr, nv, nerr) || nerr != nil {
				continue
			}
			decoded++
			nb, nerr := nenc.Marshal(nv)
			gb, gerr := genc.Marshal(gv)
			switch {
			case nerr != nil || gerr != nil:
				sameAnswer(t, what+": encode", nil, gerr, nil, nerr)
			case !bytes.Equal(gb, nb):
				t.Errorf("%s: the guest encodes %x, core %x", what, clip(gb), clip(nb))
			}
		}
	}
	if decoded < len(in)/4 {
		t.Errorf("only %d of %d decodes succeeded: the corpus is mostly junk", decoded, 2*len(in))
	}
	t.Logf("%d inputs, %d decoded", len(in), decoded)
}
