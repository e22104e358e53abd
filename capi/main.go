// Command capi is the C ABI of viacodec. Built with
//
//	go build -buildmode=c-shared -o libviacodec.so ./capi
//
// (make capi) it gives libviacodec.so and libviacodec.h; viacodec.h is the
// header C callers include. The Python package loads the library with
// ctypes. It is the one package that uses cgo, and a thin shell: the
// exports (exports_*.go, by area) convert C types, own C memory and call
// internal/abi, the export layer the wasm guest shares, which decides.
//
// # Conventions
//
// Types are plain C: int64_t handles, pointer + length buffers, int32_t
// status codes. A status is a core.Kind value: 0 is success, and the other
// numbers never change (see core/errors.go and vc_kind_name).
//
// Handles come from one table. A handle number is never reused, so a
// released or made-up handle gives status 1 (invalid), never a crash.
// vc_release releases a handle of any kind: it cancels the handle's calls
// that block (downloads, waits), waits for its calls in progress and then
// frees it. Calls on one handle from several threads run in parallel.
//
// Every fallible export takes a last argument vc_error* err, which may be
// NULL. On success err->msg is set to NULL and err->offset to -1; on
// failure err->msg is a NUL-terminated UTF-8 message the caller frees with
// vc_free, and err->offset is the byte offset in the input the error
// points at, or -1. Errors are thus per call and thread-safe.
//
// Memory: the library never hands out Go memory. A buffer it returns is
// either C memory owned by a handle (valid until vc_release) or C memory
// the caller frees with vc_free; each export's comment says which. Memory
// the caller passes in is read (or, for destinations, written) during the
// call, and where a comment says so, until the handle that views it is
// released: the caller must keep it alive and unchanged until then.
//
// Panics are recovered in every export and returned as status 1 with the
// panic's text and stack.
//
// # Values
//
// A value crosses the ABI as a skeleton plus slots (docs/wire-format.md
// §4.1). The skeleton is the value as CBOR that a generic CBOR library
// reads and writes without losing anything: no envelope, float64s as
// plain floats, private tags (0x56430100-0x56430104) for float16 and
// float32 scalars, maps whose keys are not all text, small inline arrays
// and lazy refs, and the slot tag 0x56430003(index) for each array or
// long byte string passed out of line; slot index is a vc_slot that
// describes the memory holding it. The caller writes a skeleton in any
// valid form (unsorted keys, long heads): vc_encode reads it and writes
// the real message canonically. vc_decode does the reverse, and
// vc_decode_fill copies the slots' bytes into memory the caller allocated.
//
// A skeleton may also hold lazy refs, the first of each batch with its
// batch descriptor and the rest with that descriptor's number (§4.1):
// they are written again as they came, so a relay forwards references by
// decoding with pass_through and encoding the skeleton back.
//
// # By reference
//
// A host handle (vc_host_new) is a hostdl.Host: a core.Table, the server
// that serves what it publishes and a client that downloads. Releasing it
// cancels its downloads, waits for its calls, ends its open transactions
// and shuts its server down gracefully.
//
// vc_host_encode encodes by reference and publishes the batch: the
// transaction handle it returns views the caller's arrays until it is
// released, and its release first ends the transaction and waits until
// no serve reads them (abihost.Tx).
// The caller keeps the arrays alive until then.
//
// Decoding with downloads takes two calls, so that bytes land in memory
// the caller owns: vc_host_decode plans the message (core's decode plan:
// every limit checked from the declared shapes) and describes every array,
// inline or referenced, as a slot; the caller allocates them;
// vc_decode_fetch copies the inline ones and downloads the others
// straight into the caller's memory (core.FetchAll), all or nothing,
// under a deadline, and returns only when nothing writes to it any more.
// vc_decode_cancel, called from another thread, ends such a download
// early (a binding's answer to Ctrl-C), leaving the host usable.
// vc_decode_offload instead lands every array in one safetensors file
// the library creates (package offload), for the caller to map.
//
// # Processes
//
// One Go runtime lives in each process that loads the library: a process
// must not fork and keep using it in the child (use Python
// multiprocessing's "spawn" start method). Its heap holds little (arrays
// stay in the caller's memory), so it keeps the heap goal at 16 MB or
// more (internal/gcfloor) instead of collecting every few calls; setting
// GOGC in the environment turns that off.
package main

import "github.com/viacodec/viacodec/internal/gcfloor"

// gcFloor is the smallest heap goal of the library's Go runtime.
const gcFloor = 16 << 20

func init() { gcfloor.Start(gcFloor) }

func main() {}
