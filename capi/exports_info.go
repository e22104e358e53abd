package main

/*
#include "viacodec.h"
*/
import "C"

import (
	"math"
	"strings"
	"unsafe"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// abiVersion changes whenever an export or a struct changes incompatibly.
const abiVersion = C.VC_ABI_VERSION

// vc_version returns the library version (core.Version, e.g. "0.1.0").
// Ownership: the string belongs to the library and lives as long as the
// process; do not free it.
//
//export vc_version
func vc_version() (s *C.char) {
	defer recoverNil()
	return static(core.Version)
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

// vc_dtype_size returns the bytes per element of dtype (4 for float32), or
// 0 for a code that is not a dtype.
//
//export vc_dtype_size
func vc_dtype_size(dtype C.int32_t) (n C.int32_t) {
	defer recoverNil()
	if dtype < 0 || dtype > math.MaxUint8 || !core.DType(dtype).Valid() {
		return 0
	}
	return C.int32_t(core.DType(dtype).Size())
}

// vc_get_limits writes the core's fixed limits into *out.
// Ownership: out is the caller's, written during the call only.
//
//export vc_get_limits
func vc_get_limits(out *C.vc_limits, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil {
			return abi.Errorf(core.KindInvalid, "vc_get_limits: out must not be NULL")
		}
		*out = C.vc_limits{max_depth_default: core.DefaultMaxDepth, max_depth_limit: core.MaxDepthLimit, max_dims: core.MaxDims}
		return nil
	})
}

// vc_diagnose writes the message msg in CBOR diagnostic notation (core's
// Diagnose, what `viacodec inspect` prints): lines of at most width
// columns (0: one line); full nonzero writes every byte string whole,
// tokens and array payloads included. A message that is not well-formed
// fails with status 2 and the offset.
// Ownership: msg is read during the call only; *out is malloc'd,
// NUL-terminated UTF-8: vc_free it.
//
//export vc_diagnose
func vc_diagnose(msg *C.uint8_t, msgLen C.uint64_t, width C.int64_t, full C.int32_t, out **C.char, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil {
			return abi.Errorf(core.KindInvalid, "vc_diagnose: out must not be NULL")
		}
		*out = nil
		if width < 0 || width > math.MaxInt32 {
			return abi.Errorf(core.KindInvalid, "vc_diagnose: width %d is out of range", int64(width))
		}
		data, err := goBytes(msg, msgLen, "msg")
		if err != nil {
			return err
		}
		text, err := core.Diagnose(data, core.DiagOptions{Width: int(width), Full: full != 0})
		if err != nil {
			return err
		}
		*out, err = cString(text)
		return err
	})
}

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
	return call(err, func() error { return handles.Release(int64(h)) })
}

// vc_handle_count returns the number of live handles (for leak checks).
//
//export vc_handle_count
func vc_handle_count() (n C.int64_t) {
	defer recoverNil()
	return C.int64_t(handles.Len())
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
