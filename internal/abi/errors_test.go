package abi

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

func TestErrorKindsAndOffsets(t *testing.T) {
	err := Wrap(Errorf(core.KindMismatch, "inner"), "slot %d", 3)
	if err.Error() != "slot 3: inner" || KindOf(err) != core.KindMismatch {
		t.Fatalf("got %q kind %v", err, KindOf(err))
	}
	_, cerr := core.Unmarshal([]byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01})
	if OffsetOf(cerr) < 0 || KindOf(cerr) != core.KindSyntax {
		t.Fatalf("core error %v: offset %d kind %v", cerr, OffsetOf(cerr), KindOf(cerr))
	}
	// Wrapping keeps a core error's kind and offset.
	if w := Wrap(cerr, "skeleton"); KindOf(w) != core.KindSyntax || OffsetOf(w) != OffsetOf(cerr) {
		t.Fatalf("wrapped: kind %v offset %d", KindOf(w), OffsetOf(w))
	}
	p := PanicError("boom")
	if KindOf(p) != core.KindInvalid || !strings.Contains(p.Error(), "boom") || !strings.Contains(p.Error(), "goroutine") {
		t.Fatalf("panic error %q kind %v: want KindInvalid with the value and the stack", p, KindOf(p))
	}
	if KindOf(nil) != core.KindNone || OffsetOf(errors.New("x")) != -1 || OffsetOf(Errorf(core.KindInvalid, "x")) != -1 {
		t.Fatal("nil or plain error")
	}
}

// TestTextSpeaksViacodec: a foreign caller reads "viacodec: " and the
// message, not the Go package that raised it, and the kind is intact.
func TestTextSpeaksViacodec(t *testing.T) {
	_, err := Decode([]byte{0x80}, DecOptions{}, false, 0)
	if !strings.HasPrefix(err.Error(), "core: not a viacodec message") {
		t.Fatalf("core's text changed: %q", err)
	}
	if got := Text(err); !strings.HasPrefix(got, "viacodec: not a viacodec message") {
		t.Fatalf("Text: %q", got)
	}
	abitest.WantKind(t, "not a message", err, core.KindProtocol)
	if !errors.Is(err, core.ErrProtocol) || OffsetOf(err) != 0 {
		t.Fatalf("%v: not core.ErrProtocol at offset 0", err)
	}
	hostErr := core.NewError(core.KindUnavailable, nil, "hostdl: cannot reach the source")
	if got := Text(hostErr); got != "viacodec: cannot reach the source" {
		t.Fatalf("Text of a hostdl error: %q", got)
	}
	storeErr := Wrap(core.NewError(core.KindUnavailable, nil, "s3store: upload r to b/k"), "host")
	if got := Text(storeErr); got != "viacodec: host: upload r to b/k" {
		t.Fatalf("Text of an s3store error: %q", got)
	}
	if got := Text(Errorf(core.KindInvalid, "handle 7 is unknown or released")); got != "viacodec: handle 7 is unknown or released" {
		t.Fatalf("Text of an abi error: %q", got)
	}
}

// TestTextsNameNoCFunction: the export layer serves every shell (C, wasm,
// Python through C), so no text of its own names one shell's functions.
// Every string literal of the package's sources is checked.
func TestTextsNameNoCFunction(t *testing.T) {
	files, err := filepath.Glob("*.go")
	more, _ := filepath.Glob("../abihost/*.go") // capi's host speaks to the same callers
	files = append(files, more...)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	sources := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		sources++
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Errorf("%s: %v", fset.Position(lit.Pos()), err)
				}
				for _, bad := range []string{"vc_", "capi", "libviacodec"} {
					if strings.Contains(s, bad) {
						t.Errorf("%s: %q names the C ABI (%q)", fset.Position(lit.Pos()), s, bad)
					}
				}
			}
			return true
		})
	}
	if sources == 0 {
		t.Fatal("no sources checked")
	}
	// And the texts a caller meets most often.
	refs, err := os.ReadFile("../../testdata/golden/refs.cbor")
	if err != nil {
		t.Fatal(err)
	}
	_, _, useErr := Use[*Decoded](NewTable(), 1, "a decode handle")
	_, optErr := Decode(refs, DecOptions{MaxDepth: -1}, false, 0)
	_, hostErr := Decode(refs, DecOptions{}, false, 0)
	d, err := Decode(refs, DecOptions{}, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	fillErr := Fill(d, Destinations(d.Specs))
	for _, err := range []error{useErr, optErr, hostErr, fillErr} {
		if err == nil {
			t.Fatal("no error")
		}
		if txt := Text(err); strings.Contains(txt, "vc_") || strings.Contains(txt, "capi") || !strings.HasPrefix(txt, "viacodec: ") {
			t.Fatalf("text %q", txt)
		}
	}
}

// TestLayerErrorsMatchSentinels: the layer's own errors are *core.Error
// values, so Go callers branch on them with errors.Is like on core's.
func TestLayerErrorsMatchSentinels(t *testing.T) {
	err := Wrap(Errorf(core.KindMismatch, "inner"), "slot %d", 3)
	if !errors.Is(err, core.ErrMismatch) || core.KindOf(err) != core.KindMismatch {
		t.Errorf("%v: errors.Is(ErrMismatch) false or core kind %v", err, core.KindOf(err))
	}
}

// TestTextNamesNoGoPackageInside: wrapped core and hostdl errors lose their
// package names inside the text as well as at its start.
func TestTextNamesNoGoPackageInside(t *testing.T) {
	skel, err := core.Marshal(nil) // a message: an envelope, which no skeleton holds
	if err != nil {
		t.Fatal(err)
	}
	_, err = Encode(skel, nil, core.MustMode(core.EncOptions{}.EncMode()))
	if err == nil {
		t.Fatal("a message encoded as a skeleton")
	}
	text := Text(err)
	if text != "viacodec: value: an envelope in a skeleton" || OffsetOf(err) != -1 {
		t.Errorf("Text = %q, offset %d: want the core's text without an offset into the skeleton", text, OffsetOf(err))
	}
}
