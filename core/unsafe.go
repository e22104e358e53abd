package core

import "unsafe"

// unsafePointer returns the address of b's first element, or nil.
func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
