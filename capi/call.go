package main

/*
#include <stdlib.h>
#include "viacodec.h"
*/
import "C"

import (
	"math"
	"sync"
	"unsafe"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// handles is the library's one handle table.
var handles = abi.NewTable()

// call runs f with err cleared, recovering any panic, and returns f's
// status, filling err on failure.
func call(cerr *C.vc_error, f func() error) (status C.int32_t) {
	if cerr != nil {
		cerr.msg = nil
		cerr.offset = -1
	}
	defer func() {
		if p := recover(); p != nil {
			status = setError(cerr, abi.PanicError(p))
		}
	}()
	return setError(cerr, f())
}

func setError(cerr *C.vc_error, err error) C.int32_t {
	if err == nil {
		return 0
	}
	k := abi.KindOf(err)
	if k == core.KindNone {
		k = core.KindInvalid
	}
	if cerr != nil {
		cerr.msg = C.CString(abi.Text(err))
		cerr.offset = C.int64_t(abi.OffsetOf(err))
	}
	return C.int32_t(k)
}

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

// goBytes views n bytes of C memory at p.
func goBytes(p *C.uint8_t, n C.uint64_t, what string) ([]byte, error) {
	switch {
	case uint64(n) > math.MaxInt64/2:
		return nil, abi.Errorf(core.KindInvalid, "%s length %d is too large", what, uint64(n))
	case n == 0:
		return []byte{}, nil
	case p == nil:
		return nil, abi.Errorf(core.KindInvalid, "%s is NULL but its length is %d", what, uint64(n))
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// goSlots views n vc_slots at p and the memory they describe.
func goSlots(p *C.vc_slot, n C.int64_t) ([]abi.Slot, error) {
	switch {
	case n < 0 || n > math.MaxInt32:
		return nil, abi.Errorf(core.KindInvalid, "slot count %d is out of range", int64(n))
	case n == 0:
		return nil, nil
	case p == nil:
		return nil, abi.Errorf(core.KindInvalid, "slots is NULL but the count is %d", int64(n))
	}
	cs := unsafe.Slice(p, int(n))
	slots := make([]abi.Slot, len(cs))
	for i, s := range cs {
		switch {
		case uint64(s.nbytes) > math.MaxInt64/2:
			return nil, abi.Errorf(core.KindInvalid, "slot %d: nbytes %d is too large", i, uint64(s.nbytes))
		case s.data == nil && s.nbytes > 0:
			return nil, abi.Errorf(core.KindInvalid, "slot %d: data is NULL but nbytes is %d", i, uint64(s.nbytes))
		case s.ndim < 0 || s.ndim > core.MaxDims:
			return nil, abi.Errorf(core.KindInvalid, "slot %d: ndim %d is outside 0..%d", i, s.ndim, core.MaxDims)
		case s.ndim > 0 && s.shape == nil:
			return nil, abi.Errorf(core.KindInvalid, "slot %d: shape is NULL but ndim is %d", i, s.ndim)
		}
		sl := abi.Slot{DType: int32(s.dtype), Order: int32(s.order)}
		if s.data != nil {
			sl.Data = unsafe.Slice((*byte)(s.data), int(s.nbytes))
		}
		if s.ndim > 0 {
			sl.Shape = unsafe.Slice((*int64)(unsafe.Pointer(s.shape)), int(s.ndim))
		}
		slots[i] = sl
	}
	return slots, nil
}

// writeMessage writes m into C memory at dst, which holds dstCap bytes.
func writeMessage(m *core.Message, dst unsafe.Pointer, dstCap uint64) error {
	size := m.Len()
	if dstCap < uint64(size) {
		return abi.Errorf(core.KindInvalid, "destination of %d bytes is smaller than the message (%d bytes)", dstCap, size)
	}
	if dst == nil {
		return abi.Errorf(core.KindInvalid, "destination is NULL")
	}
	buf := unsafe.Slice((*byte)(dst), size)
	if out := m.AppendTo(buf[:0]); len(out) != size || unsafe.SliceData(out) != unsafe.SliceData(buf) {
		panic("capi: Message.AppendTo did not write in place")
	}
	return nil
}

// goString copies the C string p, or returns "" for NULL.
func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// goStrings copies the n C strings at p into Go memory: nil for NULL and
// 0, a slice (empty when n is 0) otherwise. A NULL entry, or p NULL with n
// not 0, is an error.
func goStrings(p **C.char, n C.int64_t, what string) ([]string, error) {
	switch {
	case n < 0 || n > math.MaxInt32:
		return nil, abi.Errorf(core.KindInvalid, "%s_len %d is out of range", what, int64(n))
	case p == nil && n == 0:
		return nil, nil
	case p == nil:
		return nil, abi.Errorf(core.KindInvalid, "%s is NULL but %s_len is %d", what, what, int64(n))
	}
	ss := make([]string, n)
	for i, s := range unsafe.Slice(p, int(n)) {
		if s == nil {
			return nil, abi.Errorf(core.KindInvalid, "%s[%d] is NULL", what, i)
		}
		ss[i] = C.GoString(s)
	}
	return ss, nil
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
