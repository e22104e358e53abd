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
//   vc_free(p): frees err->msg, vc_marshal's output, vc_host_source's and
//     vc_host_name's strings, and vc_tx_wait's and vc_tx_status's outcome.
// By reference (a host: a table of published batches, the HTTP server that
// serves them, a client that downloads; capi/host.go):
//   vc_host_new(opts, &host, err): starts a host; vc_release(host) stops it.
//   vc_host_encode(host, skel, skel_len, slots, nslots, opts, &msg, &size,
//     &tx, err): encodes by reference and publishes; as vc_encode, and the
//     transaction handle tx (0 when every array went inline) views the
//     slots' data until vc_release(tx), unless opts->snapshot.
//   vc_host_decode(host, ...as vc_decode...): referenced arrays are slots
//     too; vc_decode_fetch(handle, dst, n, timeout_ns, err) copies the
//     inline ones and downloads the others into dst[i].data, caller-owned.
//   vc_host_fetch(host, skel, skel_len, dst, n, timeout_ns, err): downloads
//     the lazy refs of a skeleton into caller-owned dst[i].data.
//   vc_tx_wait(tx, timeout_ns, &outcome, err), vc_tx_status(tx, &outcome,
//     err): *outcome is malloc'd: vc_free it. vc_tx_abort(tx, err).

#define VC_ABI_VERSION 2

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
	int64_t pass_through;     // nonzero: references stay ref nodes in the skeleton
	                          // (lazy refs); nothing is downloaded
} vc_dec_options;

// vc_host_options: how vc_host_new starts a host. NULL strings and zero
// numbers mean the defaults.
typedef struct vc_host_options {
	const char* listen;        // address to listen on: default "127.0.0.1:0"
	const char* name;          // receiver id, 1 to 256 printable ASCII
	                           // characters: default a random UUID
	const char* advertise;     // base URL receivers download from: default
	                           // http(s)://<the listener's address>
	const char* tls_cert_file; // PEM certificate: the server speaks HTTPS,
	                           // and the client presents it when asked
	const char* tls_key_file;  // its PEM private key
	const char* tls_ca_file;   // PEM CA of the peers: verifies their servers
	                           // (default: the system roots)
	int32_t tls_client_auth;   // nonzero: the server demands client
	                           // certificates that tls_ca_file signed
	int32_t http2;             // nonzero: download over HTTP/2, else HTTP/1.1
	int64_t ref_threshold;     // arrays of this many bytes or more go by
	                           // reference: 1..2^48, default 1 MiB
	int64_t concurrency;       // parallel ranges per batch download: default 4
	int64_t chunk_size;        // bytes per range: default 4 MiB
} vc_host_options;

// vc_publish_options: how vc_host_encode encodes and publishes. Zero
// fields mean the defaults.
typedef struct vc_publish_options {
	int64_t max_depth;     // 1..4096, default 128
	int64_t ref_threshold; // default the host's
	int64_t receivers;     // receivers expected; 0: unknown, the transaction
	                       // then ends by timeout (or abort)
	int64_t quorum;        // confirmations that make a timed-out transaction
	                       // "quorum met"; 0: none (1 when receivers is 0)
	int64_t timeout_ns;    // inactivity timeout: default 5 minutes
	int32_t snapshot;      // nonzero: copy the arrays at publish time, so the
	                       // caller may change or free them at once
	int32_t reserved;      // set to 0
} vc_publish_options;

// vc_receiver_status: one receiver of a transaction, as the source saw it.
typedef struct vc_receiver_status {
	const char* id;        // its receiver id, NUL-terminated
	int32_t state;         // 0 started, 1 confirmed, 2 failed
	                       // (vc_receiver_state_name)
	int32_t reserved;
	int64_t bytes;         // item bytes served to it
	int64_t first_seen_ns; // Unix time in nanoseconds
	int64_t last_seen_ns;
} vc_receiver_status;

// vc_outcome: a transaction's state and receivers, in one malloc'd block
// (strings and array included) that the caller frees with vc_free.
typedef struct vc_outcome {
	int32_t state;                 // 0 open, 1 completed, 2 quorum met,
	                               // 3 timed out, 4 aborted, 5 deleted
	                               // (vc_tx_state_name)
	int32_t ended;                 // 1 once it has ended and no serve reads
	                               // the caller's memory any more
	int64_t nreceivers;
	vc_receiver_status* receivers; // in the order they first appeared
	const char* ref_id;            // the batch's ref id (a UUID)
} vc_outcome;

// vc_host_counters: a host's counters (vc_host_stats).
typedef struct vc_host_counters {
	int64_t bytes_served;      // item bytes its server wrote to receivers
	int64_t requests;          // requests its server answered
	int64_t open_transactions; // transactions open now
	int64_t receivers_active;  // receivers started and not confirmed, over those
	int64_t conns_open;        // connections open to its server now
} vc_host_counters;
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
// C memory it owns, and the slot values, which view the caller's message
// (or, for referenced arrays, say what to download through host).
type decodeHandle struct {
	slots []any
	skel  unsafe.Pointer // C memory
	specs unsafe.Pointer // C memory: vc_slot array, then the shapes
	host  *host          // downloads the referenced slots; nil for vc_decode
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
		return decodeC(nil, msg, msg_len, opts, handle, skel, skel_len, slots, nslots)
	})
}

// decodeC is vc_decode, and with a host vc_host_decode.
func decodeC(h *host, msg *C.uint8_t, msg_len C.uint64_t, opts *C.vc_dec_options, handle *C.int64_t,
	skel **C.uint8_t, skel_len *C.uint64_t, slots **C.vc_slot, nslots *C.int64_t) error {
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
			passThrough:    opts.pass_through != 0,
		}
	}
	refs := refsRefuse
	if h != nil {
		refs = refsSlots
	}
	d, err := decodeMessage(data, o, refs)
	if err != nil {
		return err
	}
	dh, err := newDecodeHandle(d, h)
	if err != nil {
		return err
	}
	*handle = C.int64_t(handles.add(dh))
	*skel, *skel_len = (*C.uint8_t)(dh.skel), C.uint64_t(d.skel.Len())
	*slots, *nslots = (*C.vc_slot)(dh.specs), C.int64_t(len(d.slots))
	return nil
}

// newDecodeHandle writes d's skeleton and slot descriptors into C memory.
func newDecodeHandle(d *decoded, h *host) (*decodeHandle, error) {
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
	return &decodeHandle{slots: d.slots, skel: skel, specs: specs, host: h}, nil
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

// ---- By reference: hosts ----

// goString copies the C string p, or returns "" for NULL.
func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// cString returns s as malloc'd C memory, or an error when malloc fails.
func cString(s string) (*C.char, error) {
	p, err := cMalloc(len(s) + 1)
	if err != nil {
		return nil, err
	}
	b := unsafe.Slice((*byte)(p), len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return (*C.char)(p), nil
}

// vc_host_new starts a host: a table for the batches it publishes, an HTTP
// server (hostdl) that serves them on opts->listen, and a client that
// downloads the references it decodes, reporting opts->name as its
// receiver id. opts may be NULL for the defaults. The host runs until
// vc_release(host), which cancels its downloads, ends its open
// transactions (state 5, deleted) and closes its server; its transaction
// handles stay valid until released.
// Ownership: opts and its strings are read during the call only.
//
//export vc_host_new
func vc_host_new(opts *C.vc_host_options, handle *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil {
			return errorf(core.KindInvalid, "vc_host_new: handle must not be NULL")
		}
		*handle = 0
		var o hostOptions
		if opts != nil {
			o = hostOptions{
				listen: goString(opts.listen), name: goString(opts.name), advertise: goString(opts.advertise),
				tlsCert: goString(opts.tls_cert_file), tlsKey: goString(opts.tls_key_file), tlsCA: goString(opts.tls_ca_file),
				clientAuth: opts.tls_client_auth != 0, http2: opts.http2 != 0,
				refThreshold: int64(opts.ref_threshold), concurrency: int64(opts.concurrency), chunkSize: int64(opts.chunk_size),
			}
		}
		h, err := newHost(o)
		if err != nil {
			return err
		}
		*handle = C.int64_t(handles.add(h))
		return nil
	})
}

// hostString returns one of the host's strings as malloc'd C memory.
func hostString(h C.int64_t, out **C.char, what string, get func(*host) string) error {
	if out == nil {
		return errorf(core.KindInvalid, "%s: out must not be NULL", what)
	}
	*out = nil
	hs, done, err := shareHandle[*host](handles, int64(h), "a host handle")
	if err != nil {
		return err
	}
	defer done()
	*out, err = cString(get(hs))
	return err
}

// vc_host_source returns the base URL the host's server is reached at (the
// source written into the batches it publishes), e.g.
// "http://127.0.0.1:40123".
// Ownership: *out is malloc'd; the caller frees it with vc_free.
//
//export vc_host_source
func vc_host_source(h C.int64_t, out **C.char, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		return hostString(h, out, "vc_host_source", func(h *host) string { return h.source })
	})
}

// vc_host_name returns the host's receiver id (opts->name, or the UUID
// chosen for it).
// Ownership: *out is malloc'd; the caller frees it with vc_free.
//
//export vc_host_name
func vc_host_name(h C.int64_t, out **C.char, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		return hostString(h, out, "vc_host_name", func(h *host) string { return h.name })
	})
}

// vc_host_stats fills *out with the host's counters.
// Ownership: out is caller-owned and written during the call only.
//
//export vc_host_stats
func vc_host_stats(h C.int64_t, out *C.vc_host_counters, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil {
			return errorf(core.KindInvalid, "vc_host_stats: out must not be NULL")
		}
		hs, done, err := shareHandle[*host](handles, int64(h), "a host handle")
		if err != nil {
			return err
		}
		defer done()
		st := hs.server.Stats()
		var requests int64
		for _, n := range st.Requests {
			requests += n
		}
		*out = C.vc_host_counters{
			bytes_served: C.int64_t(st.BytesServed), requests: C.int64_t(requests),
			open_transactions: C.int64_t(st.Table.Open), receivers_active: C.int64_t(st.Table.ReceiversActive),
			conns_open: C.int64_t(st.ConnsOpen),
		}
		return nil
	})
}

// vc_host_encode encodes a value given as a skeleton and slots, as
// vc_encode does, but by reference: every array of the threshold's size or
// more becomes a ref node, and the batch of those arrays is published on
// the host for receivers to download. The skeleton may hold ref nodes
// (lazy refs a relay forwards); they are written again as they came.
//
//	handle, size  receive the message handle and size, as from vc_encode
//	tx            receives the transaction handle, or 0 when no array went
//	              by reference (there is then nothing to publish)
//
// Ownership: as vc_encode for the message handle. Unless opts->snapshot is
// set, the transaction views the data of the slots that went by reference
// (not the vc_slot array): the caller keeps that memory alive and
// unchanged until it has released tx with vc_release, which first ends
// the transaction (aborted) if it is still open and then waits until no
// receiver reads the memory any more. With opts->snapshot the arrays are
// copied at publish time and only the message handle views them.
//
//export vc_host_encode
func vc_host_encode(h C.int64_t, skel *C.uint8_t, skel_len C.uint64_t, slots *C.vc_slot, nslots C.int64_t,
	opts *C.vc_publish_options, handle *C.int64_t, size *C.uint64_t, tx *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil || size == nil || tx == nil {
			return errorf(core.KindInvalid, "vc_host_encode: handle, size and tx must not be NULL")
		}
		*handle, *size, *tx = 0, 0, 0
		sk, err := goBytes(skel, skel_len, "skeleton")
		if err != nil {
			return err
		}
		descs, err := goSlots(slots, nslots)
		if err != nil {
			return err
		}
		var o publishOptions
		if opts != nil {
			o = publishOptions{
				maxDepth: int64(opts.max_depth), refThreshold: int64(opts.ref_threshold),
				receivers: int64(opts.receivers), quorum: int64(opts.quorum),
				timeoutNs: int64(opts.timeout_ns), snapshot: opts.snapshot != 0,
			}
		}
		hs, done, err := shareHandle[*host](handles, int64(h), "a host handle")
		if err != nil {
			return err
		}
		defer done()
		m, th, err := hs.encode(sk, descs, o)
		if err != nil {
			return err
		}
		*size = C.uint64_t(m.Len())
		*handle = C.int64_t(handles.add(&messageHandle{msg: m}))
		if th != nil {
			*tx = C.int64_t(handles.add(th))
		}
		return nil
	})
}

// vc_host_decode decodes a message as vc_decode does, except that
// referenced arrays (unless opts->pass_through) are slots too, with
// descriptors like the inline ones: vc_decode_fetch then downloads them
// into the caller's memory through the host. With opts->pass_through the
// references stay ref nodes in the skeleton, as with vc_decode.
// Ownership: as vc_decode.
//
//export vc_host_decode
func vc_host_decode(h C.int64_t, msg *C.uint8_t, msg_len C.uint64_t, opts *C.vc_dec_options, handle *C.int64_t,
	skel **C.uint8_t, skel_len *C.uint64_t, slots **C.vc_slot, nslots *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		hs, done, err := shareHandle[*host](handles, int64(h), "a host handle")
		if err != nil {
			return err
		}
		defer done()
		return decodeC(hs, msg, msg_len, opts, handle, skel, skel_len, slots, nslots)
	})
}

// vc_decode_fetch is vc_decode_fill for a handle from vc_host_decode: it
// copies the inline slots into dst[i].data and downloads the referenced
// ones straight there, batch by batch (in parallel, checksummed, with a
// receipt to each source), through the host the message was decoded with.
// Destinations are checked as vc_decode_fill checks them; a NULL one is
// skipped. timeout_ns bounds the whole call (negative: no limit; 0: fails
// at once if anything is to download). Failure is status 11 on timeout,
// 12 when the host is released meanwhile, or the download's kind; the
// destinations' contents are then undefined. When it returns, nothing
// writes to them any more.
// Ownership: dst and the memory it points to are caller-owned; the memory
// is written during the call only.
//
//export vc_decode_fetch
func vc_decode_fetch(h C.int64_t, dst *C.vc_slot, n C.int64_t, timeout_ns C.int64_t, err *C.vc_error) C.int32_t {
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
		return fetchSlotsInto(d.host, d.slots, dsts, int64(timeout_ns))
	})
}

// vc_host_fetch downloads lazy refs: skel is a skeleton whose body is a
// list of n ref nodes (with their batch descriptors), and ref i lands in
// dst[i].data, which must hold its nbytes bytes, with its dtype (a NULL
// data is skipped). Each distinct item is downloaded once. h is the host
// whose client downloads, or 0 for the library's own client (a random
// receiver id, no TLS files). timeout_ns as for vc_decode_fetch.
// Ownership: skel, dst and the memory it points to are caller-owned; the
// memory is written during the call only.
//
//export vc_host_fetch
func vc_host_fetch(h C.int64_t, skel *C.uint8_t, skel_len C.uint64_t, dst *C.vc_slot, n C.int64_t,
	timeout_ns C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		sk, err := goBytes(skel, skel_len, "skeleton")
		if err != nil {
			return err
		}
		dsts, err := goSlots(dst, n)
		if err != nil {
			return err
		}
		var hs *host
		if h != 0 {
			var done func()
			if hs, done, err = shareHandle[*host](handles, int64(h), "a host handle"); err != nil {
				return err
			}
			defer done()
		}
		return fetchRefs(hs, sk, dsts, int64(timeout_ns))
	})
}

// ---- By reference: transactions ----

// newOutcome writes out into one malloc'd block.
func newOutcome(out core.Outcome, ended bool, refID string) (*C.vc_outcome, error) {
	head := int(unsafe.Sizeof(C.vc_outcome{}))
	rsize := int(unsafe.Sizeof(C.vc_receiver_status{}))
	size := head + len(out.Receivers)*rsize + len(refID) + 1
	for _, r := range out.Receivers {
		size += len(r.ID) + 1
	}
	p, err := cMalloc(size)
	if err != nil {
		return nil, err
	}
	block := unsafe.Slice((*byte)(p), size)
	strs := head + len(out.Receivers)*rsize
	str := func(s string) *C.char {
		q := &block[strs]
		copy(block[strs:], s)
		block[strs+len(s)] = 0
		strs += len(s) + 1
		return (*C.char)(unsafe.Pointer(q))
	}
	o := (*C.vc_outcome)(p)
	*o = C.vc_outcome{state: C.int32_t(out.State), nreceivers: C.int64_t(len(out.Receivers))}
	if ended {
		o.ended = 1
	}
	if len(out.Receivers) > 0 {
		rs := unsafe.Slice((*C.vc_receiver_status)(unsafe.Add(p, head)), len(out.Receivers))
		for i, r := range out.Receivers {
			rs[i] = C.vc_receiver_status{
				id: str(r.ID), state: C.int32_t(r.State), bytes: C.int64_t(r.Bytes),
				first_seen_ns: C.int64_t(r.FirstSeen.UnixNano()), last_seen_ns: C.int64_t(r.LastSeen.UnixNano()),
			}
		}
		o.receivers = &rs[0]
	}
	o.ref_id = str(refID)
	return o, nil
}

// vc_tx_wait waits until the transaction of handle tx has ended and no
// receiver reads its items any more, for at most timeout_ns (negative: no
// limit; 0: just look), and returns its outcome. Status 11 (timeout) when
// time runs out first, 12 (aborted) when the handle is released meanwhile.
// Threads may wait on one transaction at once.
// Ownership: *outcome is one malloc'd block; the caller frees it with
// vc_free.
//
//export vc_tx_wait
func vc_tx_wait(tx C.int64_t, timeout_ns C.int64_t, outcome **C.vc_outcome, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if outcome == nil {
			return errorf(core.KindInvalid, "vc_tx_wait: outcome must not be NULL")
		}
		*outcome = nil
		t, done, err := shareHandle[*txHandle](handles, int64(tx), "a transaction handle")
		if err != nil {
			return err
		}
		defer done()
		out, err := t.wait(int64(timeout_ns))
		if err != nil {
			return err
		}
		*outcome, err = newOutcome(out, true, t.tx.Ref().RefID.String())
		return err
	})
}

// vc_tx_status returns the transaction's state and receivers as they are
// now, without waiting (state 0 while it is open).
// Ownership: *outcome is one malloc'd block; the caller frees it with
// vc_free.
//
//export vc_tx_status
func vc_tx_status(tx C.int64_t, outcome **C.vc_outcome, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if outcome == nil {
			return errorf(core.KindInvalid, "vc_tx_status: outcome must not be NULL")
		}
		*outcome = nil
		t, done, err := shareHandle[*txHandle](handles, int64(tx), "a transaction handle")
		if err != nil {
			return err
		}
		defer done()
		out, ended := t.status()
		*outcome, err = newOutcome(out, ended, t.tx.Ref().RefID.String())
		return err
	})
}

// vc_tx_abort ends the transaction with state 4 (aborted) if it is still
// open; receivers then fail. Its memory is still read until the serves in
// progress end: wait (vc_tx_wait) or release the handle before freeing it.
//
//export vc_tx_abort
func vc_tx_abort(tx C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		t, done, err := shareHandle[*txHandle](handles, int64(tx), "a transaction handle")
		if err != nil {
			return err
		}
		defer done()
		t.tx.Abort()
		return nil
	})
}

// vc_tx_state_name returns the name of transaction state s ("completed"),
// or NULL for a number that is not one.
// Ownership: the string belongs to the library; do not free it.
//
//export vc_tx_state_name
func vc_tx_state_name(s C.int32_t) (name *C.char) {
	defer recoverNil()
	if s < 0 || s > C.int32_t(core.StateDeleted) {
		return nil
	}
	return static(core.State(s).String())
}

// vc_receiver_state_name returns the name of receiver state s
// ("confirmed"), or NULL for a number that is not one.
// Ownership: the string belongs to the library; do not free it.
//
//export vc_receiver_state_name
func vc_receiver_state_name(s C.int32_t) (name *C.char) {
	defer recoverNil()
	if s < 0 || s > C.int32_t(core.ReceiverFailed) {
		return nil
	}
	return static(core.ReceiverState(s).String())
}
