package main

// Tests of what the cgo shell decides itself: how a call reports its
// outcome. Test files cannot use cgo, so C types are reached through the
// shell's own functions; everything the export layer decides is tested in
// internal/abi, and the exports themselves through the real shared library
// (bindings/python/tests).

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/viacodec/viacodec/capi/internal/abihost"
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

// newArg returns a zeroed value of the C struct that f takes (its C type
// cannot be named here).
func newArg[O, R any](f func(*O) R) *O { return new(O) }

// newArgErr is newArg for a function that also returns an error.
func newArgErr[O, R any](f func(*O) (R, error)) *O { return new(O) }

// setPointer sets the C pointer field at dst to p.
func setPointer[P any](dst *P, p unsafe.Pointer) { *(*unsafe.Pointer)(unsafe.Pointer(dst)) = p }

// cStrings returns a malloc'd array of malloc'd C strings, a nil entry
// being NULL, and a function that frees them all.
func cStrings(t *testing.T, ss ...*string) (unsafe.Pointer, func()) {
	t.Helper()
	arr, err := cMalloc(len(ss) * int(unsafe.Sizeof(unsafe.Pointer(nil))))
	if err != nil {
		t.Fatal(err)
	}
	entries := unsafe.Slice((*unsafe.Pointer)(arr), len(ss))
	for i, s := range ss {
		entries[i] = nil
		if s != nil {
			p, err := cString(*s)
			if err != nil {
				t.Fatal(err)
			}
			entries[i] = unsafe.Pointer(p)
		}
	}
	return arr, func() {
		for _, e := range entries {
			if e != nil {
				cFree(e)
			}
		}
		cFree(arr)
	}
}

// setInt sets the C integer field at dst to v.
func setInt[I ~int64](dst *I, v int64) { *dst = I(v) }

func ptr(s string) *string { return &s }

// TestPublishOptionsNames: vc_publish_options' names cross into Go memory,
// and the C memory is read during the call only; NULL where an array or an
// entry must be is an error.
func TestPublishOptionsNames(t *testing.T) {
	if o, err := publishOptions(nil); err != nil || o.Names != nil || o.MaxReceivers != 0 {
		t.Fatalf("NULL options: %+v, %v", o, err)
	}
	opts := newArgErr(publishOptions)
	if o, err := publishOptions(opts); err != nil || o.Names != nil {
		t.Fatalf("names NULL, names_len 0 (anyone): %+v, %v", o, err)
	}

	arr, free := cStrings(t, ptr("agent-1"), ptr("agent-2"))
	setPointer(&opts.names, arr)
	opts.names_len = 2
	opts.max_receivers = 7
	opts.receivers = 1
	opts.snapshot = 1
	o, err := publishOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	// The strings are Go's: changing and freeing the C memory leaves them.
	first := *(*unsafe.Pointer)(arr)
	*(*byte)(first) = 'X'
	free()
	if len(o.Names) != 2 || o.Names[0] != "agent-1" || o.Names[1] != "agent-2" || o.MaxReceivers != 7 || o.Receivers != 1 || !o.Snapshot {
		t.Fatalf("options %+v", o)
	}

	// names not NULL and names_len 0 stays an empty list, which the
	// export layer refuses, rather than becoming "anyone".
	arr, free = cStrings(t)
	defer free()
	setPointer(&opts.names, arr)
	opts.names_len = 0
	if o, err := publishOptions(opts); err != nil || o.Names == nil || len(o.Names) != 0 {
		t.Fatalf("names not NULL, names_len 0: %+v, %v", o.Names, err)
	}

	withNull, freeNull := cStrings(t, ptr("agent-1"), nil, ptr("agent-3"))
	defer freeNull()
	for _, c := range []struct {
		name  string
		names unsafe.Pointer
		n     int64
		text  string
	}{
		{"NULL names with names_len 2", nil, 2, "names is NULL but names_len is 2"},
		{"negative names_len", withNull, -1, "names_len -1 is out of range"},
		{"names_len beyond 2^31", withNull, 1 << 40, "names_len 1099511627776 is out of range"},
		{"a NULL entry", withNull, 3, "names[1] is NULL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setPointer(&opts.names, c.names)
			setInt(&opts.names_len, c.n)
			_, err := publishOptions(opts)
			if core.KindOf(err) != core.KindInvalid || err.Error() != c.text {
				t.Fatalf("got %v (kind %v), want kind invalid and %q", err, core.KindOf(err), c.text)
			}
		})
	}
}

// TestHostOptions: every field of vc_host_options reaches the export
// layer.
func TestHostOptions(t *testing.T) {
	host := func(o abihost.HostOptions, err error) abihost.HostOptions {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if o := host(hostOptions(nil)); !reflect.DeepEqual(o, abihost.HostOptions{}) {
		t.Fatalf("NULL options: %+v", o)
	}
	opts := newArgErr(hostOptions)
	opts.allow_cleartext = 1
	opts.http2 = 1
	opts.concurrency = 3
	if o := host(hostOptions(opts)); !o.AllowCleartext || !o.HTTP2 || o.ClientAuth || o.Concurrency != 3 || o.TrustedHops != nil {
		t.Fatalf("options %+v", o)
	}
	opts.allow_cleartext = 0
	if o := host(hostOptions(opts)); o.AllowCleartext {
		t.Fatalf("allow_cleartext 0: %+v", o)
	}
	name := "cell-1"
	strs, free := cStrings(t, &name)
	defer free()
	setPointer(&opts.default_name, *(*unsafe.Pointer)(strs))
	if o := host(hostOptions(opts)); o.DefaultName != "cell-1" || o.Name != "" {
		t.Fatalf("default_name: %+v", o)
	}
	hops, freeHops := cStrings(t, ptr("relay-a"), ptr("relay-b"))
	defer freeHops()
	setPointer(&opts.trusted_hops, hops)
	opts.trusted_hops_len = 2
	if o := host(hostOptions(opts)); !slices.Equal(o.TrustedHops, []string{"relay-a", "relay-b"}) {
		t.Fatalf("trusted_hops: %+v", o.TrustedHops)
	}
	nullHop, freeNull := cStrings(t, ptr("relay-a"), nil)
	defer freeNull()
	setPointer(&opts.trusted_hops, nullHop)
	opts.trusted_hops_len = 2
	if _, err := hostOptions(opts); err == nil || !strings.Contains(err.Error(), "trusted_hops") {
		t.Fatalf("a NULL entry in trusted_hops: %v", err)
	}
}
