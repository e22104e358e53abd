package offload_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/internal/arraytest"
	"github.com/viacodec/viacodec/internal/dirtest"
	"github.com/viacodec/viacodec/internal/leakcheck"
	"github.com/viacodec/viacodec/internal/tensorfile"
	"github.com/viacodec/viacodec/offload"
)

func TestMain(m *testing.M) { leakcheck.Main(m, nil) }

var quiet = slog.New(slog.DiscardHandler)

// pair is a source host and a receiver's decode mode over loopback.
type pair struct {
	src *hostdl.Host
	dec *core.DecMode
}

func newPair(t *testing.T) pair {
	t.Helper()
	src, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	rcv, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: hostdl.ClientOptions{Receiver: "r", Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rcv.Close() })
	dec, err := rcv.DecMode(core.DecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pair{src, dec}
}

// send encodes v by reference and publishes its batch for one receiver.
func (p pair) send(t *testing.T, v any) []byte {
	t.Helper()
	enc, err := p.src.EncMode(core.EncOptions{ByRef: true, RefThreshold: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := enc.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.src.Publish(msg.Batch(), core.PublishOptions{Receivers: 1}); err != nil {
		t.Fatal(err)
	}
	return msg.Bytes()
}

func model(t *testing.T) map[string]any {
	rng := rand.New(rand.NewPCG(1, 2))
	return map[string]any{
		"round": int64(3),
		"model": map[string]any{
			"w":    arraytest.Random(t, rng, core.DTypeFloat32, []int{300, 200}, core.RowMajor),  // by reference
			"b":    arraytest.Random(t, rng, core.DTypeFloat32, []int{7}, core.RowMajor),         // inline
			"c":    arraytest.Random(t, rng, core.DTypeComplex128, []int{30, 10}, core.RowMajor), // no safetensors dtype
			"f":    arraytest.Random(t, rng, core.DTypeFloat64, []int{40, 30}, core.ColumnMajor), // column-major
			"h":    arraytest.Random(t, rng, core.DTypeBFloat16, []int{1024}, core.RowMajor),
			"none": arraytest.Random(t, rng, core.DTypeInt8, []int{0}, core.RowMajor),
		},
		"layers": []any{arraytest.Random(t, rng, core.DTypeInt64, []int{200}, core.RowMajor)},
	}
}

func arrays(body any) map[string]*core.Array {
	m := body.(map[string]any)
	out := map[string]*core.Array{"layers.0": m["layers"].([]any)[0].(*core.Array)}
	for k, v := range m["model"].(map[string]any) {
		out["model."+k] = v.(*core.Array)
	}
	return out
}

// The arrays land in a safetensors file, bit for bit, named by their
// paths; the value views the file; Close removes it.
func TestDecodeIntoAFile(t *testing.T) {
	p := newPair(t)
	want := model(t)
	msg := p.send(t, want)
	dir := t.TempDir()
	v, err := offload.Decode(context.Background(), p.dec, msg, offload.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Body.(map[string]any)["round"]; got != int64(3) {
		t.Errorf("round = %v", got)
	}
	data, err := os.ReadFile(v.Path())
	if err != nil {
		t.Fatal(err)
	}
	file, err := tensorfile.Read(tensorfile.Safetensors, data)
	if err != nil {
		t.Fatal(err)
	}
	inFile := map[string]*core.Array{}
	for _, tn := range file.Tensors {
		inFile[tn.Name] = tn.Array
	}
	got := arrays(v.Body)
	for name, w := range arrays(want) {
		g := got[name]
		if g.DType != w.DType || g.Order != w.Order || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: got %s %v %s, want %s %v %s", name, g.DType, g.Shape, g.Order, w.DType, w.Shape, w.Order)
		}
		f := inFile[name]
		if f == nil || !bytes.Equal(f.Data, w.Data) {
			t.Errorf("%s: not in the file as it is", name)
		}
	}
	if d := file.Metadata[tensorfile.OffloadKey+"model.c"]; d != `{"dtype":"complex128","shape":[30,10],"order":"C"}` {
		t.Errorf("complex128 described as %q", d)
	}
	if f := inFile["model.f"]; f.DType != core.DTypeFloat64 || f.Shape[0] != 30 || f.Shape[1] != 40 {
		t.Errorf("column-major [40 30] in the file as %s %v", f.DType, f.Shape)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if names := dirtest.Names(t, dir); len(names) != 0 {
		t.Errorf("after Close: %v", names)
	}
}

// A kept file outlives its value under the path asked for; an existing
// file there is replaced only once the new one is complete.
func TestKeepAndPath(t *testing.T) {
	p := newPair(t)
	want := model(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	os.WriteFile(path, []byte("old"), 0o644)
	v, err := offload.Decode(context.Background(), p.dec, p.send(t, want), offload.Options{Path: path, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.Path() != path {
		t.Errorf("path %s, want %s", v.Path(), path)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tensorfile.Read(tensorfile.Safetensors, data); err != nil {
		t.Fatal(err)
	}
	if names := dirtest.Names(t, dir); len(names) != 1 {
		t.Errorf("left behind: %v", names)
	}
}

// A file removed while its value is in use: the value still reads its
// arrays (the mapping holds the file), and Close does not fail.
func TestFileRemovedUnderTheValue(t *testing.T) {
	p := newPair(t)
	want := model(t)
	v, err := offload.Decode(context.Background(), p.dec, p.send(t, want), offload.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(v.Path()); err != nil {
		t.Fatal(err)
	}
	if g, w := arrays(v.Body)["model.w"], arrays(want)["model.w"]; !bytes.Equal(g.Data, w.Data) {
		t.Error("the arrays changed when their file was removed")
	}
	if err := v.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// A download that fails leaves no file, and the value is not returned.
func TestFailedDownloadLeavesNoFile(t *testing.T) {
	p := newPair(t)
	msg := p.send(t, model(t))
	p.src.Close() // the source is gone
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	for _, o := range []offload.Options{{Dir: dir}, {Path: path, Keep: true}} {
		v, err := offload.Decode(context.Background(), p.dec, msg, o)
		if v != nil || core.KindOf(err) != core.KindUnavailable {
			t.Errorf("%+v: got %v, %v; want a KindUnavailable error", o, v, err)
		}
		if names := dirtest.Names(t, dir); len(names) != 0 {
			t.Errorf("%+v: left behind: %v", o, names)
		}
	}
}

// mount mounts a tmpfs of size bytes in a fresh directory (read-only if
// ro) and unmounts it when the test ends; it skips without the privilege.
func mount(t *testing.T, size string, ro bool) string {
	t.Helper()
	dir := t.TempDir()
	opts := "size=" + size
	if ro {
		opts += ",ro"
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// A full disk and a directory that cannot be written are clear errors
// before anything downloads, and leave nothing behind.
func TestDiskErrors(t *testing.T) {
	p := newPair(t)
	want := model(t)
	cases := []struct {
		name string
		dir  string
		kind core.Kind
		is   error
	}{
		{"full", mount(t, "64k", false), core.KindLimit, syscall.ENOSPC},
		{"read-only", mount(t, "1m", true), core.KindInvalid, syscall.EROFS},
		{"missing", filepath.Join(t.TempDir(), "no", "such"), core.KindInvalid, fs.ErrNotExist},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := offload.Decode(context.Background(), p.dec, p.send(t, want), offload.Options{Dir: c.dir})
			if v != nil || core.KindOf(err) != c.kind || !errors.Is(err, c.is) {
				t.Fatalf("got %v, %v; want %v, %v", v, err, c.kind, c.is)
			}
			t.Log(err)
			if _, statErr := os.Stat(c.dir); statErr == nil {
				if names := dirtest.Names(t, c.dir); len(names) != 0 {
					t.Errorf("left behind: %v", names)
				}
			}
		})
	}
}

func TestNames(t *testing.T) {
	body := map[string]any{
		"a":   map[string]any{"b": core.SlotIndex(0)},
		"a.b": core.SlotIndex(1),
		"l":   []any{core.SlotIndex(2), core.Map{{Key: int64(7), Value: core.SlotIndex(3)}}},
		"x":   core.SlotIndex(4),
	}
	got := offload.Names(body, 6)
	want := []string{"a.b", "a.b#1", "l.0", "l.1.7", "x", "slot5"}
	if !slicesEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	if got := offload.Names(core.SlotIndex(0), 1); got[0] != "tensor" {
		t.Errorf("a body that is one array: %q", got)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
