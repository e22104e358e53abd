package main

/*
#include "viacodec.h"
*/
import "C"

import (
	"unsafe"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// vc_encode encodes a value given as a skeleton and slots (see vc_slot)
// and returns a message handle and the message size; vc_message_copy then
// writes the message into a buffer of that size.
//
//	skel, skel_len   the skeleton (docs/wire-format.md §4.1): the value,
//	                 its arrays as slot tags or inline; caller-owned
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
			return abi.Errorf(core.KindInvalid, "vc_encode: handle and size must not be NULL")
		}
		*handle, *size = 0, 0
		m, err := encodeC(skel, skel_len, slots, nslots, opts)
		if err != nil {
			return err
		}
		*size = C.uint64_t(m.Len())
		*handle = C.int64_t(handles.Add(m))
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
	var o abi.EncOptions
	if opts != nil {
		o.MaxDepth = int64(opts.max_depth)
	}
	mode, err := o.EncMode()
	if err != nil {
		return nil, err
	}
	return abi.Encode(sk, descs, mode)
}

// vc_message_copy writes the message of handle h into dst, which holds
// dst_cap bytes (at least the size vc_encode returned). It writes exactly
// that many bytes. The handle stays valid until vc_release.
// Ownership: dst is caller-owned and written during the call only.
//
//export vc_message_copy
func vc_message_copy(h C.int64_t, dst unsafe.Pointer, dst_cap C.uint64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		m, done, err := abi.Use[*core.Message](handles, int64(h), "a message handle")
		if err != nil {
			return err
		}
		defer done()
		return writeMessage(m, dst, uint64(dst_cap))
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
			return abi.Errorf(core.KindInvalid, "vc_marshal: out and out_len must not be NULL")
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

// decodeHandle is a decoded message for C: the abi's Decoded, and its
// skeleton and slot descriptors in C memory the handle owns.
type decodeHandle struct {
	d     *abi.Decoded
	skel  unsafe.Pointer // C memory
	specs unsafe.Pointer // C memory: vc_slot array, then the shapes
}

// Cancel ends the handle's download; the handle table calls it before a
// release waits for the calls in progress.
func (h *decodeHandle) Cancel() { h.d.Cancel() }

// Close frees the handle's C memory; the handle table calls it once no
// call uses the handle.
func (h *decodeHandle) Close() {
	cFree(h.skel)
	cFree(h.specs)
	h.skel, h.specs, h.d = nil, nil, nil
}

// vc_decode decodes a message into a skeleton and slots. The caller then
// allocates memory for each slot as its descriptor says, and
// vc_decode_fill copies the slots' bytes there: the only copy of array
// bytes between the message and their destination.
//
//	msg, msg_len   the message; caller-owned
//	opts           decode options, or NULL for the defaults
//	handle         receives the decode handle; release with vc_release
//	skel, skel_len receive the skeleton (docs/wire-format.md §4.1), whose
//	               arrays (but inline ones shorter than
//	               opts->array_slot_min) and byte strings of
//	               opts->bytes_slot_min bytes or more are slot tags
//	               0x56430003(index)
//	slots, nslots  receive nslots descriptors: data NULL; nbytes, dtype,
//	               order, ndim, shape and flags set (dtype 0 for a byte
//	               string, flags VC_SLOT_REF for a download)
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
		return decodeC(msg, msg_len, opts, false, 0, handle, skel, skel_len, slots, nslots)
	})
}

// decodeC is vc_decode, and with canFetch vc_host_decode.
func decodeC(msg *C.uint8_t, msg_len C.uint64_t, opts *C.vc_dec_options, canFetch bool, host int64, handle *C.int64_t,
	skel **C.uint8_t, skel_len *C.uint64_t, slots **C.vc_slot, nslots *C.int64_t) error {
	if handle == nil || skel == nil || skel_len == nil || slots == nil || nslots == nil {
		return abi.Errorf(core.KindInvalid, "vc_decode: output pointers must not be NULL")
	}
	*handle, *skel, *skel_len, *slots, *nslots = 0, nil, 0, nil, 0
	data, err := goBytes(msg, msg_len, "message")
	if err != nil {
		return err
	}
	var o abi.DecOptions
	if opts != nil {
		o = abi.DecOptions{
			MaxDepth:       int64(opts.max_depth),
			MaxElements:    int64(opts.max_elements),
			MaxByteLen:     int64(opts.max_byte_len),
			MaxMessageSize: int64(opts.max_message_size),
			MaxArrayBytes:  int64(opts.max_array_bytes),
			BytesSlotMin:   int64(opts.bytes_slot_min),
			ArraySlotMin:   int64(opts.array_slot_min),
			PassThrough:    opts.pass_through != 0,
		}
	}
	d, err := abi.Decode(data, o, canFetch, host)
	if err != nil {
		return err
	}
	dh, err := newDecodeHandle(d)
	if err != nil {
		return err
	}
	*handle = C.int64_t(handles.Add(dh))
	*skel, *skel_len = (*C.uint8_t)(dh.skel), C.uint64_t(d.Skeleton.Len())
	*slots, *nslots = (*C.vc_slot)(dh.specs), C.int64_t(len(d.Specs))
	return nil
}

// newDecodeHandle writes d's skeleton and slot descriptors into C memory.
func newDecodeHandle(d *abi.Decoded) (*decodeHandle, error) {
	skel, err := cMalloc(d.Skeleton.Len())
	if err != nil {
		return nil, err
	}
	if err := writeMessage(d.Skeleton, skel, uint64(d.Skeleton.Len())); err != nil {
		cFree(skel)
		return nil, err
	}
	dims := 0
	for _, s := range d.Specs {
		dims += len(s.Shape)
	}
	slotSize := int(unsafe.Sizeof(C.vc_slot{}))
	specs, err := cMalloc(len(d.Specs)*slotSize + dims*8)
	if err != nil {
		cFree(skel)
		return nil, err
	}
	cs := unsafe.Slice((*C.vc_slot)(specs), len(d.Specs))
	shapes := unsafe.Slice((*C.int64_t)(unsafe.Add(specs, len(d.Specs)*slotSize)), dims)
	for i, s := range d.Specs {
		cs[i] = C.vc_slot{nbytes: C.uint64_t(s.Bytes), dtype: C.int32_t(s.DType), order: C.int32_t(s.Order), ndim: C.int32_t(len(s.Shape))}
		if s.Ref {
			cs[i].flags = C.VC_SLOT_REF
		}
		if len(s.Shape) > 0 {
			for j, n := range s.Shape {
				shapes[j] = C.int64_t(n)
			}
			cs[i].shape = &shapes[0]
			shapes = shapes[len(s.Shape):]
		}
	}
	return &decodeHandle{d: d, skel: skel, specs: specs}, nil
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
		return withDecoded(h, dst, n, abi.Fill)
	})
}

// vc_decode_cancel ends the download of decode handle h in progress, if
// any, and every later one: vc_decode_fetch returns status 12 (aborted)
// as soon as its transfers have stopped, and nothing writes to its
// destinations any more. Another thread calls it while one waits in
// vc_decode_fetch; the handle stays valid until vc_release, and the host
// the message was decoded with is not affected.
//
//export vc_decode_cancel
func vc_decode_cancel(h C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		d, done, err := abi.Use[*decodeHandle](handles, int64(h), "a decode handle")
		if err != nil {
			return err
		}
		defer done()
		d.Cancel()
		return nil
	})
}

// withDecoded runs f on the decode handle h and the n destinations at dst.
func withDecoded(h C.int64_t, dst *C.vc_slot, n C.int64_t, f func(*abi.Decoded, []abi.Slot) error) error {
	d, done, err := abi.Use[*decodeHandle](handles, int64(h), "a decode handle")
	if err != nil {
		return err
	}
	defer done()
	dsts, err := goSlots(dst, n)
	if err != nil {
		return err
	}
	return f(d.d, dsts)
}
