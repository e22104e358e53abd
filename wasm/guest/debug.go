//go:build wasip1 && viacodec_debug

package main

// Exports for the host's tests only, in a guest built with
// -tags viacodec_debug: each misbehaves in one way a guest can, or probes
// what the sandbox lets it do. The release guest has none of them.

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unsafe"
)

//go:wasmexport vc_debug_panic
func vcDebugPanic() { panic("vc_debug_panic") }

// vc_debug_trap stores 3.75 GiB past a variable, outside the memory of
// any guest under 3.75 GiB: a wasm trap, not a Go panic.
//
//go:wasmexport vc_debug_trap
func vcDebugTrap() {
	*(*uint64)(unsafe.Add(unsafe.Pointer(&spins), 0xf000_0000)) = 1
}

var spins uint64

// vc_debug_loop never returns.
//
//go:wasmexport vc_debug_loop
func vcDebugLoop() {
	for {
		spins++
	}
}

// vc_debug_deadlock waits on a channel nobody will send on.
//
//go:wasmexport vc_debug_deadlock
func vcDebugDeadlock() {
	<-make(chan int)
}

// vc_debug_grow allocates n MiB, touching every page, and keeps it.
//
//go:wasmexport vc_debug_grow
func vcDebugGrow(mib uint32) {
	for range mib {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		kept = append(kept, b)
	}
}

var kept [][]byte

// vc_debug_random returns n bytes of crypto/rand.
//
//go:wasmexport vc_debug_random
func vcDebugRandom(n uint32) uint64 {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return result(b, err)
}

// vc_debug_sleep sleeps ms milliseconds.
//
//go:wasmexport vc_debug_sleep
func vcDebugSleep(ms uint32) { time.Sleep(time.Duration(ms) * time.Millisecond) }

// vc_debug_sandbox tries to read the file at path, to create a file, to
// connect to addr (a TCP address) and to read its environment and
// arguments, and reports each outcome, one line each.
//
//go:wasmexport vc_debug_sandbox
func vcDebugSandbox(path, pathLen, addrPtr, addrLen uint32) uint64 {
	p, err := view(path, pathLen, "path")
	if err != nil {
		return result(nil, err)
	}
	a, err := view(addrPtr, addrLen, "address")
	if err != nil {
		return result(nil, err)
	}
	var out strings.Builder
	report := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(&out, "%s: error: %v\n", what, err)
		} else {
			fmt.Fprintf(&out, "%s: ok\n", what)
		}
	}
	_, err = os.ReadFile(string(p))
	report("read", err)
	f, err := os.Create("viacodec-sandbox-probe")
	if err == nil {
		f.Close()
	}
	report("create", err)
	_, err = os.ReadDir("/")
	report("readdir", err)
	c, err := net.Dial("tcp", string(a))
	if err == nil {
		c.Close()
	}
	report("dial", err)
	fmt.Fprintf(&out, "env: %d\nargs: %d\n", len(os.Environ()), len(os.Args))
	return result([]byte(out.String()), nil)
}
