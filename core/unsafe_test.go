package core

import "unsafe"

func uintptrOf(p *byte) uintptr            { return uintptr(unsafe.Pointer(p)) }
func unsafePointer(p *byte) unsafe.Pointer { return unsafe.Pointer(p) }
