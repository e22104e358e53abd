package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cmdtest"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// packed writes a safetensors model into dir and returns the message that
// pack makes of it, written to a regular file.
func packed(t *testing.T, dir string) []byte {
	t.Helper()
	writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, modelFile(t, tensorfile.Safetensors))
	viacodec(t, dir, nil, "pack", "m.safetensors", "-o", "want.cbor").OK(t)
	want, err := os.ReadFile(filepath.Join(dir, "want.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// -o through a symlink writes the link's target, and the link stays a
// link; so does a link to a link, and a dangling link creates its target.
func TestOutputThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	want := packed(t, dir)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "target.cbor"), []byte("old"), 0o600)
	os.Symlink("sub/target.cbor", filepath.Join(dir, "link.cbor"))
	os.Symlink("link.cbor", filepath.Join(dir, "link2.cbor"))
	os.Symlink("sub/new.cbor", filepath.Join(dir, "dangling.cbor"))
	for _, link := range []string{"link.cbor", "link2.cbor", "dangling.cbor"} {
		os.WriteFile(filepath.Join(dir, "sub", "target.cbor"), []byte("old"), 0o600)
		viacodec(t, dir, nil, "pack", "m.safetensors", "-o", link).OK(t)
		if fi, err := os.Lstat(filepath.Join(dir, link)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s is no longer a symlink: %v %v", link, fi.Mode(), err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, link)); !bytes.Equal(got, want) {
			t.Fatalf("%s: the target holds %d bytes, want the message's %d", link, len(got), len(want))
		}
	}
	// The target keeps its mode; no temporary file is left anywhere.
	if fi, _ := os.Stat(filepath.Join(dir, "sub", "target.cbor")); fi.Mode().Perm() != 0o600 {
		t.Errorf("target mode %v, want 0600", fi.Mode().Perm())
	}
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
			}
		}
	}
}

// -o naming a character device writes into it: the device stays a
// device. (A null device of the test's own, so that a regression never
// replaces the machine's /dev/null.)
func TestOutputToDevice(t *testing.T) {
	dir := t.TempDir()
	packed(t, dir)
	null := filepath.Join(dir, "null")
	if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("cannot make a device node here: %v", err)
	}
	for _, args := range [][]string{
		{"pack", "m.safetensors", "-o", null},
		{"unpack", "want.cbor", "-o", null, "-format", "safetensors"},
	} {
		viacodec(t, dir, nil, args...).OK(t)
		if fi, err := os.Lstat(null); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("%q: %s is no longer a character device: %v %v", args, null, fi.Mode(), err)
		}
	}
}

// -o naming a FIFO writes into it: its reader gets the bytes and the end
// of them, and the FIFO stays a FIFO.
func TestOutputToFIFO(t *testing.T) {
	dir := t.TempDir()
	want := packed(t, dir)
	fifo := filepath.Join(dir, "fifo.cbor")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until the command opens it
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		data, _ := io.ReadAll(f)
		got <- data
	}()
	viacodec(t, dir, nil, "pack", "m.safetensors", "-o", "fifo.cbor").OK(t)
	select {
	case data := <-got:
		if !bytes.Equal(data, want) {
			t.Fatalf("the reader got %d bytes, want the message's %d", len(data), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the FIFO's reader got nothing: the command did not write into it")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("%s is no longer a FIFO: %v %v", fifo, fi.Mode(), err)
	}
}

// A regular file is still replaced whole, and only once it is complete:
// a failed run leaves the old file as it was.
func TestOutputRegularFileAtomic(t *testing.T) {
	dir := t.TempDir()
	want := packed(t, dir)
	os.WriteFile(filepath.Join(dir, "out.safetensors"), []byte("old"), 0o644)
	z, err := core.NewArray(core.DTypeComplex128, []int{1}, core.RowMajor, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	c128, err := core.Marshal(map[string]any{"z": z})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "c128.cbor"), c128, 0o644)
	viacodec(t, dir, nil, "pack", "m.safetensors", "-o", "out.cbor").OK(t)
	if got, _ := os.ReadFile(filepath.Join(dir, "out.cbor")); !bytes.Equal(got, want) {
		t.Fatal("out.cbor differs")
	}
	viacodec(t, dir, nil, "unpack", "c128.cbor", "-o", "out.safetensors").Fails(t, 1, "complex128")
	if got, _ := os.ReadFile(filepath.Join(dir, "out.safetensors")); string(got) != "old" {
		t.Fatalf("a failed unpack changed out.safetensors: %q", got)
	}
}

// A missing directory is named by the path the user gave, not by a
// temporary file.
func TestOutputMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	packed(t, dir)
	r := viacodec(t, dir, nil, "pack", "m.safetensors", "-o", "nodir/m.cbor")
	r.Fails(t, 1, "viacodec pack: cannot write nodir/m.cbor: no such file or directory")
	if strings.Contains(r.Stderr, ".tmp") {
		t.Fatalf("the error names a temporary file: %q", r.Stderr)
	}
}

// Standard output redirected to /dev/null, or to a pipe, is fine; only a
// terminal is refused.
func TestOutputStdoutNotTerminal(t *testing.T) {
	dir := t.TempDir()
	want := packed(t, dir)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for _, args := range [][]string{
		{"pack", "m.safetensors"},
		{"unpack", "want.cbor", "-format", "safetensors"},
	} {
		cmd := exec.Command(cmdtest.Path, args...)
		cmd.Dir, cmd.Stdout = dir, devnull
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Fatalf("%q > /dev/null: %v, %q", args, err, stderr.String())
		}
	}
	for _, out := range []string{"-", "/dev/stdout"} {
		if got := viacodec(t, dir, nil, "pack", "m.safetensors", "-o", out).OK(t).Stdout; got != string(want) {
			t.Fatalf("pack -o %s to a pipe: %d bytes, want %d", out, len(got), len(want))
		}
	}

	// A terminal: the pseudo-terminal of the test's own.
	tty := cmdtest.OpenPTY(t, 80, nil)
	cmd := exec.Command(cmdtest.Path, "pack", "m.safetensors")
	cmd.Dir, cmd.Stdout = dir, tty
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "will not write binary data to a terminal") {
		t.Fatalf("pack to a terminal: %v, %q", err, stderr.String())
	}
}
