package main

/*
#include <stdlib.h>

// vc_try_malloc returns NULL when malloc fails: cgo's C.malloc would
// crash the process instead, and a failed allocation must be a status.
static void* vc_try_malloc(size_t n) { return malloc(n == 0 ? 1 : n); }
*/
import "C"

import (
	"unsafe"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// cMalloc allocates n bytes of C memory (at least one), which C frees with
// free (vc_free) and Go with cFree.
func cMalloc(n int) (unsafe.Pointer, error) {
	if n < 0 {
		return nil, abi.Errorf(core.KindInvalid, "allocation of %d bytes", n)
	}
	p := C.vc_try_malloc(C.size_t(n))
	if p == nil {
		return nil, abi.Errorf(core.KindLimit, "out of memory allocating %d bytes", n)
	}
	return p, nil
}

func cFree(p unsafe.Pointer) { C.free(p) }
