package main

import (
	"encoding/hex"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// inlineMessage has a value of every kind, arrays inline, and keys that
// need quoting in a path.
func inlineMessage(t *testing.T) []byte {
	t.Helper()
	w, _ := core.ArrayOf([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b, _ := core.ArrayOf(nil, []core.BFloat16{core.BFloat16From(1), core.BFloat16From(-2)})
	col, _ := core.ArrayOf([]int{3, 2}, []int16{1, 2, 3, 4, 5, 6})
	col.Order = core.ColumnMajor
	scalar, _ := core.ArrayOf([]int{}, []complex128{1 + 2i})
	e4m3, _ := core.ArrayOf([]int{1, 4}, []core.Float8E4M3FN{0x38, 0x40, 0x44, 0x7f})
	flags, _ := core.ArrayOf(nil, []bool{true, false, true})
	big1, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	v := map[string]any{
		"round": 3,
		"lr":    float32(0.001),
		"model": map[string]any{
			"layers.0.attn.weight": w,
			"layers.0.norm":        b,
			"embed tokens":         col,
			"":                     scalar,
		},
		"extras": []any{e4m3, core.Object{Name: "opt.Adam", Data: map[string]any{"flags": flags}}},
		"meta":   core.Map{{Key: int64(7), Value: "seven"}, {Key: []byte{0xca, 0xfe}, Value: core.Float16From(1.5)}},
		"big":    big1,
		"blob":   []byte(strings.Repeat("x", 100)),
		"note":   "tab\there \"quoted\" ünïcode",
	}
	data, err := core.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// relayMessage is what a relay forwards: lazy refs into two batches of
// two sources, fixed ids and tokens, beside an inline array.
func relayMessage(t *testing.T) []byte {
	t.Helper()
	b1 := core.BatchRef{Source: "http://127.0.0.1:7001", Items: 3, Bytes: 4096 + 64 + 8}
	b2 := core.BatchRef{Source: "http://127.0.0.1:7002", Items: 1, Bytes: 12}
	for i := range b1.RefID {
		b1.RefID[i], b2.RefID[i] = byte(i), byte(0x40|i)
	}
	b1.RefID[6], b2.RefID[6] = 0x40, 0x40
	b1.RefID[8], b2.RefID[8] = 0x80, 0x80
	for i := range b1.Token {
		b1.Token[i], b2.Token[i] = byte(0xa0+i), byte(0xc0+i)
	}
	bias, _ := core.ArrayOf(nil, []float32{0.5, -0.5})
	v := map[string]any{
		"round": 4,
		"from":  "relay-1",
		"model": map[string]any{
			"w":    &core.LazyRef{Batch: b1, Item: 0, DType: core.DTypeFloat32, Shape: []int{32, 32}},
			"b":    &core.LazyRef{Batch: b1, Item: 1, DType: core.DTypeFloat32, Shape: []int{16}},
			"emb":  &core.LazyRef{Batch: b2, Item: 0, DType: core.DTypeBFloat16, Shape: []int{2, 3}, Order: core.ColumnMajor},
			"tied": &core.LazyRef{Batch: b1, Item: 0, DType: core.DTypeFloat32, Shape: []int{32, 32}},
			"bias": bias,
		},
	}
	data, err := core.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestInspectGolden(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		args []string
	}{
		{"inline", inlineMessage(t), nil},
		{"relay", relayMessage(t), nil},
		{"relay-one-line", relayMessage(t), []string{"-width", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "msg.cbor"), tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got := viacodec(t, dir, nil, append(append([]string{"inspect"}, tt.args...), "msg.cbor")...).OK(t).Stdout
			golden := filepath.Join("testdata", "inspect-"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/viacodec -run TestInspectGolden -args -update writes it)", err)
			}
			if got != string(want) {
				t.Fatalf("output differs from %s:\n%s", golden, got)
			}
			// Standard input gives the same.
			if stdin := viacodec(t, dir, tt.data, append(append([]string{"inspect"}, tt.args...), "-")...).OK(t).Stdout; stdin != got {
				t.Fatalf("inspect - differs from inspect FILE:\n%s", stdin)
			}
		})
	}
}

// A token shows its first two bytes, nowhere all of them.
func TestInspectHidesTokens(t *testing.T) {
	out := viacodec(t, t.TempDir(), relayMessage(t), "inspect", "-").OK(t).Stdout
	for _, first := range []byte{0xa0, 0xc0} {
		token := make([]byte, core.TokenSize)
		for i := range token {
			token[i] = first + byte(i)
		}
		full := hex.EncodeToString(token)
		if !strings.Contains(out, full[:4]+"…") {
			t.Errorf("token %s… is not shown", full[:4])
		}
		for n := 5; n <= len(full); n++ {
			if strings.Contains(out, full[:n]) {
				t.Fatalf("%d hex digits of a token are shown", n)
			}
		}
	}
}

func TestInspectBadInput(t *testing.T) {
	dir := t.TempDir()
	data := relayMessage(t)
	for _, cut := range []int{0, 1, 5, len(data) / 2, len(data) - 1} {
		if err := os.WriteFile(filepath.Join(dir, "cut.cbor"), data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		viacodec(t, dir, nil, "inspect", "cut.cbor").Fails(t, 1, "viacodec inspect: cut.cbor: ")
		viacodec(t, dir, data[:cut], "inspect", "-").Fails(t, 1, "viacodec inspect: standard input: ")
	}
	os.WriteFile(filepath.Join(dir, "text.cbor"), []byte("not a message\n"), 0o644)
	viacodec(t, dir, nil, "inspect", "text.cbor").Fails(t, 1, "viacodec inspect: text.cbor: ")
	viacodec(t, dir, nil, "inspect", "missing.cbor").Fails(t, 1, "viacodec inspect: open missing.cbor: no such file or directory")
}

// A safetensors or .npz file where a message belongs says what it is,
// and what reads it.
func TestNotAMessage(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []tensorfile.Format{tensorfile.Safetensors, tensorfile.NPZ} {
		name := "m." + f.String()
		writeFile(t, filepath.Join(dir, name), f, modelFile(t, f))
		what := map[tensorfile.Format]string{tensorfile.Safetensors: "a safetensors file", tensorfile.NPZ: "an .npz file"}[f]
		want := name + ": not a viacodec message (" + what + "? try viacodec pack)"
		viacodec(t, dir, nil, "inspect", name).Fails(t, 1, "viacodec inspect: "+want)
		viacodec(t, dir, nil, "unpack", name, "-o", "out.safetensors").Fails(t, 1, "viacodec unpack: "+want)
		viacodec(t, dir, nil, "fetch", name, "-o", "out.npz").Fails(t, 1, "viacodec fetch: "+want)
		viacodec(t, dir, nil, "serve", name, "-format", "message", "-o", "out.cbor").Fails(t, 1, "viacodec serve: "+want)
	}
	// Junk given to pack is not a safetensors file.
	os.WriteFile(filepath.Join(dir, "junk.safetensors"), []byte(strings.Repeat("garbage\n", 20)), 0o644)
	viacodec(t, dir, nil, "pack", "junk.safetensors").Fails(t, 1, "viacodec pack: junk.safetensors: not a safetensors file (its first 8 bytes give a header of ")
	assertOnly(t, dir, "m.safetensors", "m.npz", "junk.safetensors")
}
