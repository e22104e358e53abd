package guestwasm

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/viacodec/viacodec/wasm/internal/guestbuild"
)

var update = flag.Bool("update", false, "rebuild viacodec.wasm from wasm/guest (make wasm)")

// TestEmbeddedGuest rebuilds the guest and compares it with the embedded
// one byte for byte: a change of the guest's sources (the guest, the
// export layer, core) or of the toolchain without make wasm fails here.
// With -update it writes the new guest instead.
func TestEmbeddedGuest(t *testing.T) {
	out := filepath.Join(t.TempDir(), "viacodec.wasm")
	if err := guestbuild.Build(context.Background(), "../../..", out); err != nil {
		t.Fatal(err)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("viacodec.wasm", built, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote viacodec.wasm (%d bytes)", len(built))
		return
	}
	if !bytes.Equal(built, Binary()) {
		t.Fatalf("the embedded viacodec.wasm (%d bytes) is not the guest its sources build (%d bytes): run make wasm",
			len(Binary()), len(built))
	}
}
