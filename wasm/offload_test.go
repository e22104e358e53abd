package wasm

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/offload"
)

// TestDecodeOffload: a guest-decoded message lands in the same
// safetensors file, byte for byte, as a natively decoded one; the value
// views it, and Close removes it.
func TestDecodeOffload(t *testing.T) {
	rt := newRuntime(t, Options{})
	src, dst := quietHost(t), quietHost(t)
	enc, err := src.EncMode(core.EncOptions{ByRef: true, RefThreshold: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<18)
	for i := range big {
		big[i] = byte(i * 7)
	}
	w, _ := core.NewArray(core.DTypeFloat32, []int{256, 256}, core.RowMajor, big)
	b := arrayOf(t, core.DTypeFloat64, core.ColumnMajor)
	m, err := enc.Encode(map[string]any{"round": int64(2), "model": map[string]any{"w": w, "b": b}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Publish(m.Batch(), core.PublishOptions{Receivers: 2}); err != nil {
		t.Fatal(err)
	}
	o := core.DecOptions{Fetcher: dst.Client()}
	native, _ := o.DecMode()
	guest, err := rt.DecMode(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nv, err := offload.Decode(context.Background(), native, m.Bytes(), offload.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer nv.Close()
	gv, err := guest.DecodeOffload(context.Background(), m.Bytes(), offload.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := gv.Body.(map[string]any)["model"].(map[string]any)["w"].(*core.Array)
	if !bytes.Equal(got.Data, big) {
		t.Error("the guest-decoded array differs")
	}
	nf, _ := os.ReadFile(nv.Path())
	gf, _ := os.ReadFile(gv.Path())
	if len(gf) == 0 || !bytes.Equal(nf, gf) {
		t.Errorf("the guest's file (%d bytes) differs from the native one (%d bytes)", len(gf), len(nf))
	}
	path := gv.Path()
	if err := gv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after Close: %v", err)
	}
}
