package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cmdtest"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// peakRSS runs the command in dir and returns its peak resident memory,
// VmHWM read from /proc while it runs. (The rusage of a child that Go
// starts inherits the parent's peak: it is spawned sharing the parent's
// memory until it executes.)
func peakRSS(t *testing.T, dir string, args ...string) int64 {
	t.Helper()
	cmd := exec.Command(cmdtest.Path, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	for {
		if data, err := os.ReadFile(status); err == nil {
			for line := range strings.Lines(string(data)) {
				var kib int64
				if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kib); err == nil {
					peak = max(peak, kib<<10)
				}
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("viacodec %q: %v\n%s", args, err, out.String())
			}
			return peak
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// fetch -o FILE.safetensors writes the arrays to the file as they
// download: its peak memory stays far below the model's size, where a
// fetch that holds the model (to .npz) exceeds it. A real source on
// loopback (serve), bit for bit.
func TestFetchToFileMemory(t *testing.T) {
	const size = 128 << 20
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	file := &tensorfile.File{Metadata: map[string]string{"format": "pt"}}
	for i, n := range []int{size / 2, size / 4, size / 4} {
		data := make([]byte, n)
		for j := 0; j < n; j += 8 {
			binary.LittleEndian.PutUint64(data[j:], rng.Uint64())
		}
		a, err := core.NewArray(core.DTypeFloat32, []int{n / 4}, core.RowMajor, data)
		if err != nil {
			t.Fatal(err)
		}
		file.Tensors = append(file.Tensors, tensorfile.Tensor{Name: string(rune('a' + i)), Array: a})
	}
	orig := writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, file)
	file = nil

	s := startServe(t, dir, "m.safetensors", "-o", "msg.cbor", "-receivers", "2", "-timeout", "2m")
	waitFile(t, s, filepath.Join(dir, "msg.cbor"))
	offloaded := peakRSS(t, dir, "fetch", "msg.cbor", "-o", "out.safetensors", "-receiver", "offloaded")
	inMemory := peakRSS(t, dir, "fetch", "msg.cbor", "-o", "out.npz", "-drop-metadata", "-receiver", "in-memory")
	s.wait(t).OK(t)
	t.Logf("peak RSS of fetch: %d MiB to .safetensors, %d MiB to .npz, model %d MiB", offloaded>>20, inMemory>>20, size>>20)
	if got, _ := os.ReadFile(filepath.Join(dir, "out.safetensors")); !bytes.Equal(got, orig) {
		t.Error("the file fetched differs from the one served")
	}
	if inMemory < size {
		t.Errorf("a fetch to .npz peaked at %d MiB, less than the %d MiB model: the measure is wrong", inMemory>>20, size>>20)
	}
	if offloaded > size/2 {
		t.Errorf("a fetch to .safetensors peaked at %d MiB for a %d MiB model", offloaded>>20, size>>20)
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".*")); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// fetch -o onto a full disk, or into a directory that cannot be written,
// fails in the command's terms before anything downloads, and leaves no
// file; a source that is gone leaves none either.
func TestFetchToFileErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, servedFile(t, tensorfile.Safetensors))
	full, ro := filepath.Join(dir, "full"), filepath.Join(dir, "ro")
	for _, m := range []struct{ dir, opts string }{{full, "size=1m"}, {ro, "size=1m,ro"}} {
		os.Mkdir(m.dir, 0o755)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", m.opts, "tmpfs", m.dir).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", m.dir).Run() })
	}
	s := startServe(t, dir, "m.safetensors", "-o", "msg.cbor", "-receivers", "1", "-timeout", "1m")
	waitFile(t, s, filepath.Join(dir, "msg.cbor"))
	viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "full/out.safetensors").Fails(t, 1, "viacodec fetch: cannot write full/out.safetensors: no space left on device")
	viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "ro/out.safetensors").Fails(t, 1, "viacodec fetch: cannot write ro/out.safetensors: read-only file system")
	for _, d := range []string{full, ro} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("left in %s: %v", d, entries)
		}
	}
	s.cmd.Process.Kill()
	<-s.done
	viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "out.safetensors", "-timeout", "20s").Fails(t, 1, "viacodec fetch: msg.cbor: ")
	if matches, _ := filepath.Glob(filepath.Join(dir, "*out.safetensors*")); len(matches) != 0 {
		t.Errorf("left behind: %v", matches)
	}
}
