package main

/*
#include <stddef.h>
#include <stdint.h>

// The C ABI of viacodec (libviacodec.so). Conventions, in short (capi's
// package comment has them in full):
//   - A status is an int32_t core.Kind: 0 OK, 1 invalid, 2 syntax, 3 limit,
//     4 unknown tag, 5 mismatch, 6 unregistered, 7 protocol, 8 unknown ref,
//     9 expired, 10 auth, 11 timeout, 12 aborted, 13 checksum,
//     14 unavailable. vc_kind_name names them. Never renumbered.
//   - Handles are int64_t > 0 from one table; a bad or released handle
//     gives status 1. vc_release releases any handle.
//   - The library never hands out Go memory. Each export says who owns each
//     buffer and which function frees it.
//   - A process must not fork and keep using the library in the child.
//
// Exports and who owns what (capi/exports.go has the full comments):
//   vc_version, vc_kind_name, vc_dtype_name: static strings, never freed.
//   vc_encode(skel, skel_len, slots, nslots, opts, &handle, &size, err):
//     the message handle views skel and the slots' data: keep them alive
//     and unchanged until vc_release(handle).
//   vc_message_copy(handle, dst, dst_cap, err): writes size bytes into the
//     caller's dst.
//   vc_marshal(skel, skel_len, slots, nslots, opts, &out, &out_len, err):
//     *out is malloc'd: vc_free it.
//   vc_decode(msg, msg_len, opts, &handle, &skel, &skel_len, &slots,
//     &nslots, err): *skel, *slots and their shapes belong to the handle
//     (freed by vc_release); the handle views msg: keep it alive and
//     unchanged until vc_release(handle).
//   vc_decode_fill(handle, dst, n, err): copies slot i into dst[i].data,
//     caller-owned.
//   vc_release(handle, err): frees a handle of any kind and what it owns.
//   vc_free(p): frees err->msg and vc_marshal's output.

#define VC_ABI_VERSION 1

// vc_error receives the error of a failed call. On success msg is NULL and
// offset -1. On failure msg is NUL-terminated UTF-8 text, malloc'd: the
// caller frees it with vc_free; offset is the byte offset in the input the
// error points at, or -1.
typedef struct vc_error {
	char*   msg;
	int64_t offset;
} vc_error;

// vc_slot describes the memory of one array (or byte string) that crosses
// the ABI out of line, as slot object ["viacodec.slot", index] of a skeleton.
//   data    first byte; may be NULL when nbytes is 0
//   nbytes  byte length: dtype size x product(shape)
//   dtype   a core.DType (1 bool, 2-5 int8-int64, 6-9 uint8-uint64,
//           10 float16, 11 bfloat16, 12 float32, 13 float64, 14 complex64,
//           15 complex128, 16 float8_e4m3fn, 17 float8_e5m2; vc_dtype_name),
//           or 0 for a byte string
//   order   0 row-major (C), 1 column-major (Fortran)
//   ndim    number of dimensions, 0 to 64 (0 for a byte string)
//   shape   ndim dimensions
// Elements are little-endian.
typedef struct vc_slot {
	void*          data;
	uint64_t       nbytes;
	int32_t        dtype;
	int32_t        order;
	int32_t        ndim;
	int32_t        reserved; // set to 0
	const int64_t* shape;
} vc_slot;

// vc_enc_options: zero fields mean core's defaults.
typedef struct vc_enc_options {
	int64_t max_depth;        // 1..4096, default 128
} vc_enc_options;

// vc_dec_options: zero fields mean core's defaults (core/options.go).
typedef struct vc_dec_options {
	int64_t max_depth;        // nesting of lists, maps, tags: 1..4096, default 128
	int64_t max_elements;     // items of one list or map: default 2^24
	int64_t max_byte_len;     // one byte or text string: default 4 GiB
	int64_t max_message_size; // the message: default 16 GiB
	int64_t max_array_bytes;  // array bytes of the message: default 64 GiB
	int64_t bytes_slot_min;   // byte strings this long or longer become slots; 0: none
} vc_dec_options;
*/
import "C"

import (
	"math"
	"strings"
	"sync"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

// libVersion is the library's version, returned by vc_version.
const libVersion = "0.1.0"

// abiVersion changes whenever an export or a struct changes incompatibly.
const abiVersion = C.VC_ABI_VERSION

// call runs f with err cleared, recovering any panic, and returns f's
// status, filling err on failure.
func call(cerr *C.vc_error, f func() error) (status C.int32_t) {
	if cerr != nil {
		cerr.msg = nil
		cerr.offset = -1
	}
	defer func() {
		if p := recover(); p != nil {
			status = setError(cerr, panicError(p))
		}
	}()
	return setError(cerr, f())
}

func setError(cerr *C.vc_error, err error) C.int32_t {
	if err == nil {
		return 0
	}
	k := kindOf(err)
	if k == core.KindNone {
		k = core.KindInvalid
	}
	if cerr != nil {
		cerr.msg = C.CString(err.Error())
		cerr.offset = C.int64_t(offsetOf(err))
	}
	return C.int32_t(k)
}

// goBytes views n bytes of C memory at p.
func goBytes(p *C.uint8_t, n C.uint64_t, what string) ([]byte, error) {
	switch {
	case uint64(n) > math.MaxInt64/2:
		return nil, errorf(core.KindInvalid, "%s length %d is too large", what, uint64(n))
	case n == 0:
		return []byte{}, nil
	case p == nil:
		return nil, errorf(core.KindInvalid, "%s is NULL but its length is %d", what, uint64(n))
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// goSlots converts n vc_slots at p.
func goSlots(p *C.vc_slot, n C.int64_t) ([]slotDesc, error) {
	switch {
	case n < 0 || n > math.MaxInt32:
		return nil, errorf(core.KindInvalid, "slot count %d is out of range", int64(n))
	case n == 0:
		return nil, nil
	case p == nil:
		return nil, errorf(core.KindInvalid, "slots is NULL but the count is %d", int64(n))
	}
	cs := unsafe.Slice(p, int(n))
	descs := make([]slotDesc, len(cs))
	for i, s := range cs {
		descs[i] = slotDesc{
			data:   s.data,
			nbytes: uint64(s.nbytes),
			dtype:  int32(s.dtype),
			order:  int32(s.order),
			ndim:   int32(s.ndim),
			shape:  unsafe.Pointer(s.shape),
		}
	}
	return descs, nil
}

// writeMessage writes m into C memory at dst, which holds dstCap bytes.
func writeMessage(m *core.Message, dst unsafe.Pointer, dstCap uint64) error {
	size := m.Len()
	if dstCap < uint64(size) {
		return errorf(core.KindInvalid, "destination of %d bytes is smaller than the message (%d bytes)", dstCap, size)
	}
	if dst == nil {
		return errorf(core.KindInvalid, "destination is NULL")
	}
	buf := unsafe.Slice((*byte)(dst), size)
	if out := m.AppendTo(buf[:0]); len(out) != size || unsafe.SliceData(out) != unsafe.SliceData(buf) {
		panic("capi: Message.AppendTo did not write in place")
	}
	return nil
}

// ---- Library information ----

// recoverNil ends a panic in an export that has no status to report it
// with; the export then returns its zero value (NULL, 0).
func recoverNil() { _ = recover() }

var (
	staticMu      sync.Mutex
	staticStrings = map[string]*C.char{}
)

// static returns s as a C string that lives as long as the process.
func static(s string) *C.char {
	staticMu.Lock()
	defer staticMu.Unlock()
	p, ok := staticStrings[s]
	if !ok {
		p = C.CString(s)
		staticStrings[s] = p
	}
	return p
}

// vc_version returns the library version ("0.1.0").
// Ownership: the string belongs to the library and lives as long as the
// process; do not free it.
//
//export vc_version
func vc_version() (s *C.char) {
	defer recoverNil()
	return static(libVersion)
}

// vc_abi_version returns VC_ABI_VERSION of the header the library was built
// with; a binding checks it against the version it was written for.
//
//export vc_abi_version
func vc_abi_version() C.int32_t { return abiVersion }

// vc_kind_name returns the name of status code kind ("syntax"), or NULL for
// a code that is not defined.
// Ownership: the string belongs to the library; do not free it.
//
//export vc_kind_name
func vc_kind_name(kind C.int32_t) (s *C.char) {
	defer recoverNil()
	if kind < 0 || kind > math.MaxUint8 {
		return nil
	}
	// core names the kinds it defines and prints others as "kind(N)".
	name := core.Kind(kind).String()
	if strings.HasPrefix(name, "kind(") {
		return nil
	}
	return static(name)
}

// vc_dtype_name returns the numpy name of dtype ("float32"), or NULL for a
// code that is not a dtype.
// Ownership: the string belongs to the library; do not free it.
//
//export vc_dtype_name
func vc_dtype_name(dtype C.int32_t) (s *C.char) {
	defer recoverNil()
	if dtype < 0 || dtype > math.MaxUint8 || !core.DType(dtype).Valid() {
		return nil
	}
	return static(core.DType(dtype).String())
}

// ---- Memory and handles ----

// vc_free frees a buffer the library allocated and handed over to the
// caller (an error message, vc_marshal's output). NULL is allowed. Do not
// pass memory a handle owns: vc_release frees that.
//
//export vc_free
func vc_free(p unsafe.Pointer) { cFree(p) }

// vc_release releases handle h of any kind and frees the memory it owns.
// A handle in use by another thread is released when that use ends.
// Status 1 for a handle that is unknown or already released.
//
//export vc_release
func vc_release(h C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error { return handles.release(int64(h)) })
}

// vc_handle_count returns the number of live handles (for leak checks).
//
//export vc_handle_count
func vc_handle_count() (n C.int64_t) {
	defer recoverNil()
	return C.int64_t(handles.len())
}

// ---- Encode ----

// messageHandle is an encoded message that views the caller's skeleton
// and slot memory until it is copied out.
type messageHandle struct{ msg *core.Message }

// vc_encode encodes a value given as a skeleton and slots (see vc_slot)
// and returns a message handle and the message size; vc_message_copy then
// writes the message into a buffer of that size.
//
//	skel, skel_len   the skeleton: a viacodec message whose arrays are slot
//	                 objects; caller-owned
//	slots, nslots    descriptors of the slots' memory; caller-owned
//	opts             encode options, or NULL for the defaults
//	handle           receives the message handle; release with vc_release
//	size             receives the message size in bytes
//
// Ownership: the message views skel and the slots' data (not the vc_slot
// array itself) without copying them: the caller keeps both alive and
// unchanged until it has released the handle.
//
//export vc_encode
func vc_encode(skel *C.uint8_t, skel_len C.uint64_t, slots *C.vc_slot, nslots C.int64_t,
	opts *C.vc_enc_options, handle *C.int64_t, size *C.uint64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil || size == nil {
			return errorf(core.KindInvalid, "vc_encode: handle and size must not be NULL")
		}
		*handle, *size = 0, 0
		m, err := encodeC(skel, skel_len, slots, nslots, opts)
		if err != nil {
			return err
		}
		*size = C.uint64_t(m.Len())
		*handle = C.int64_t(handles.add(&messageHandle{msg: m}))
		return nil
	})
}

func encodeC(skel *C.uint8_t, skel_len C.uint64_t, slots *C.vc_slot, nslots C.int64_t, opts *C.vc_enc_options) (*core.Message, error) {
	sk, err := goBytes(skel, skel_len, "skeleton")
	if err != nil {
		return nil, err
	}
	descs, err := goSlots(slots, nslots)
	if err != nil {
		return nil, err
	}
	var o encOptions
	if opts != nil {
		o.maxDepth = int64(opts.max_depth)
	}
	return encodeSkeleton(sk, descs, o)
}

// vc_message_copy writes the message of handle h into dst, which holds
// dst_cap bytes (at least the size vc_encode returned). It writes exactly
// that many bytes. The handle stays valid until vc_release.
// Ownership: dst is caller-owned and written during the call only.
//
//export vc_message_copy
func vc_message_copy(h C.int64_t, dst unsafe.Pointer, dst_cap C.uint64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		m, done, err := useHandle[*messageHandle](handles, int64(h), "a message handle")
		if err != nil {
			return err
		}
		defer done()
		return writeMessage(m.msg, dst, uint64(dst_cap))
	})
}

// vc_marshal is vc_encode and vc_message_copy in one call: it returns the
// message in a buffer the library allocates.
// Ownership: skel and the slots are caller-owned and read during the call
// only; *out is malloc'd and the caller frees it with vc_free (on failure
// *out is NULL and *out_len 0).
//
//export vc_marshal
func vc_marshal(skel *C.uint8_t, skel_len C.uint64_t, slots *C.vc_slot, nslots C.int64_t,
	opts *C.vc_enc_options, out **C.uint8_t, out_len *C.uint64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil || out_len == nil {
			return errorf(core.KindInvalid, "vc_marshal: out and out_len must not be NULL")
		}
		*out, *out_len = nil, 0
		m, err := encodeC(skel, skel_len, slots, nslots, opts)
		if err != nil {
			return err
		}
		p, err := cMalloc(m.Len())
		if err != nil {
			return err
		}
		if err := writeMessage(m, p, uint64(m.Len())); err != nil {
			cFree(p)
			return err
		}
		*out, *out_len = (*C.uint8_t)(p), C.uint64_t(m.Len())
		return nil
	})
}

// ---- Decode ----

// decodeHandle is a decoded message: the skeleton and slot descriptors in
// C memory it owns, and the slot values, which view the caller's message.
type decodeHandle struct {
	slots []any
	skel  unsafe.Pointer // C memory
	specs unsafe.Pointer // C memory: vc_slot array, then the shapes
}

func (d *decodeHandle) close() {
	cFree(d.skel)
	cFree(d.specs)
	d.skel, d.specs, d.slots = nil, nil, nil
}

// vc_decode decodes a message into a skeleton and slots. The caller then
// allocates memory for each slot as its descriptor says, and
// vc_decode_fill copies the slots' bytes there: the only copy of array
// bytes between the message and their destination.
//
//	msg, msg_len   the message; caller-owned
//	opts           decode options, or NULL for the defaults
//	handle         receives the decode handle; release with vc_release
//	skel, skel_len receive the skeleton, a viacodec message whose arrays
//	               (and byte strings of opts->bytes_slot_min bytes or more)
//	               are slot objects ["viacodec.slot", index]
//	slots, nslots  receive nslots descriptors: data NULL; nbytes, dtype,
//	               order, ndim and shape set (dtype 0 for a byte string)
//
// Ownership: *skel, *slots and the shapes they point to are C memory owned
// by the handle, valid until vc_release(handle); do not free them. The
// decoded slots view msg without copying it: the caller keeps msg alive
// and unchanged until it has released the handle. On failure the outputs
// are 0 / NULL and there is no handle.
//
//export vc_decode
func vc_decode(msg *C.uint8_t, msg_len C.uint64_t, opts *C.vc_dec_options, handle *C.int64_t,
	skel **C.uint8_t, skel_len *C.uint64_t, slots **C.vc_slot, nslots *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil || skel == nil || skel_len == nil || slots == nil || nslots == nil {
			return errorf(core.KindInvalid, "vc_decode: output pointers must not be NULL")
		}
		*handle, *skel, *skel_len, *slots, *nslots = 0, nil, 0, nil, 0
		data, err := goBytes(msg, msg_len, "message")
		if err != nil {
			return err
		}
		var o decOptions
		if opts != nil {
			o = decOptions{
				maxDepth:       int64(opts.max_depth),
				maxElements:    int64(opts.max_elements),
				maxByteLen:     int64(opts.max_byte_len),
				maxMessageSize: int64(opts.max_message_size),
				maxArrayBytes:  int64(opts.max_array_bytes),
				bytesSlotMin:   int64(opts.bytes_slot_min),
			}
		}
		d, err := decodeMessage(data, o)
		if err != nil {
			return err
		}
		dh, err := newDecodeHandle(d)
		if err != nil {
			return err
		}
		*handle = C.int64_t(handles.add(dh))
		*skel, *skel_len = (*C.uint8_t)(dh.skel), C.uint64_t(d.skel.Len())
		*slots, *nslots = (*C.vc_slot)(dh.specs), C.int64_t(len(d.slots))
		return nil
	})
}

// newDecodeHandle writes d's skeleton and slot descriptors into C memory.
func newDecodeHandle(d *decoded) (*decodeHandle, error) {
	skel, err := cMalloc(d.skel.Len())
	if err != nil {
		return nil, err
	}
	if err := writeMessage(d.skel, skel, uint64(d.skel.Len())); err != nil {
		cFree(skel)
		return nil, err
	}
	dims := 0
	for _, v := range d.slots {
		_, _, shape, _ := slotSpec(v)
		dims += len(shape)
	}
	slotSize := int(unsafe.Sizeof(C.vc_slot{}))
	specs, err := cMalloc(len(d.slots)*slotSize + dims*8)
	if err != nil {
		cFree(skel)
		return nil, err
	}
	cs := unsafe.Slice((*C.vc_slot)(specs), len(d.slots))
	shapes := unsafe.Slice((*C.int64_t)(unsafe.Add(specs, len(d.slots)*slotSize)), dims)
	for i, v := range d.slots {
		dtype, order, shape, nbytes := slotSpec(v)
		cs[i] = C.vc_slot{nbytes: C.uint64_t(nbytes), dtype: C.int32_t(dtype), order: C.int32_t(order), ndim: C.int32_t(len(shape))}
		if len(shape) > 0 {
			for j, n := range shape {
				shapes[j] = C.int64_t(n)
			}
			cs[i].shape = &shapes[0]
			shapes = shapes[len(shape):]
		}
	}
	return &decodeHandle{slots: d.slots, skel: skel, specs: specs}, nil
}

// vc_decode_fill copies the bytes of the decode handle's slots into the
// caller's memory. dst[i] is the destination of slot i, for i < n (n at
// most the slot count): its data must hold nbytes bytes, and its dtype and
// nbytes must equal the slot's; a destination whose data is NULL is
// skipped. Every destination is checked before anything is copied. May be
// called more than once.
// Ownership: dst and the memory it points to are caller-owned; the memory
// is written during the call only.
//
//export vc_decode_fill
func vc_decode_fill(h C.int64_t, dst *C.vc_slot, n C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		d, done, err := useHandle[*decodeHandle](handles, int64(h), "a decode handle")
		if err != nil {
			return err
		}
		defer done()
		dsts, err := goSlots(dst, n)
		if err != nil {
			return err
		}
		return fillSlotsInto(d.slots, dsts)
	})
}
