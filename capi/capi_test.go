package main

// Tests of what the cgo shell decides itself: how a call reports its
// outcome. Test files cannot use cgo, so C types are reached through the
// shell's own functions; everything the export layer decides is tested in
// internal/abi, and the exports themselves through the real shared library
// (bindings/python/tests).

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

// newErrorArg returns a zeroed vc_error, the first parameter of f (its C
// type cannot be named here).
func newErrorArg[E, R any](f func(*E, func() error) R) *E { return new(E) }

// cText copies the NUL-terminated C string at p and frees it.
func cText(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	for q := p; *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b.WriteByte(*(*byte)(q))
	}
	cFree(p)
	return b.String()
}

func TestCallStatus(t *testing.T) {
	cerr := newErrorArg(call)
	_, syntax := core.Unmarshal([]byte{0xda, 0x56, 0x43, 0x00, 0x00, 0x83, 0x01})
	for _, c := range []struct {
		name   string
		f      func() error
		status core.Kind
		text   string // prefix
		offset int64
	}{
		{"success", func() error { return nil }, core.KindNone, "", -1},
		{"core error", func() error { return syntax }, core.KindSyntax, "viacodec: 3 items declared", 5},
		{"plain Go error", func() error { return errors.New("core: plain") }, core.KindInvalid, "viacodec: plain", -1},
		{"panic", func() error { panic("boom") }, core.KindInvalid, "viacodec: internal error (panic): boom", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cerr.offset = 99 // a failed call before this one left its outputs
			st := call(cerr, c.f)
			msg := cText(unsafe.Pointer(cerr.msg))
			cerr.msg = nil
			if core.Kind(st) != c.status || int64(cerr.offset) != c.offset || !strings.HasPrefix(msg, c.text) || (c.text == "") != (msg == "") {
				t.Fatalf("status %v, offset %d, text %q; want %v, %d, %q...", core.Kind(st), int64(cerr.offset), msg, c.status, c.offset, c.text)
			}
		})
	}
	// A NULL vc_error* is allowed: the status alone reports.
	if st := call(nil, func() error { panic("boom") }); core.Kind(st) != core.KindInvalid {
		t.Fatalf("status %v without vc_error", core.Kind(st))
	}
}
