//go:build linux

package wasm

import (
	"sync"
	"syscall"

	"github.com/viacodec/viacodec/internal/gate"
)

// reservedMemory is a guest's linear memory in address space reserved
// once, for the most the guest may reach (mmap, PROT_NONE); growing makes
// more of it readable and writable (mprotect). Growth never copies, and a
// view of guest memory stays valid after the guest grows.
//
// The runtime frees a guest's memory when its module closes, which an
// asynchronous close (a deadline, the runtime's Close) may do while guest
// code still runs on another goroutine: unmapping then would crash the
// process. So Free releases the pages at once but unmaps only when no call
// is in flight (enter, exit); the call in flight is ending anyway.
type reservedMemory struct {
	calls gate.Gate // calls in flight; after Free, the last one out unmaps

	mu        sync.Mutex
	buf       []byte // the whole reservation
	committed int    // bytes made readable and writable
	freed     bool   // Free was called
	deferred  bool   // Free came while a call was in flight
	unmapped  bool
	short     bool // a grow was refused since the last enter
}

// newGuestMemory reserves max bytes, or falls back to Go memory when the
// reservation fails.
func newGuestMemory(max uint64) guestMemory {
	buf, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return &sliceMemory{max: max}
	}
	return &reservedMemory{buf: buf}
}

// Reallocate implements experimental.LinearMemory: it commits the first
// size bytes, or returns nil when size is beyond the reservation.
func (m *reservedMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed {
		return nil
	}
	if size > uint64(len(m.buf)) {
		m.short = true
		return nil
	}
	if n := int(size); n > m.committed {
		if err := syscall.Mprotect(m.buf[m.committed:n], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			m.short = true
			return nil
		}
		m.committed = n
	}
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory: it gives the pages back and
// unmaps the reservation once no call is in flight.
func (m *reservedMemory) Free() {
	m.mu.Lock()
	first := !m.freed
	m.freed = true
	m.mu.Unlock()
	if !first {
		return
	}
	m.calls.Close(m.unmap) // at once when no call is in flight
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.unmapped {
		// The guest still runs: let it find zeroed pages, not a hole.
		m.deferred = true
		_ = syscall.Madvise(m.buf[:m.committed], syscall.MADV_DONTNEED)
	}
}

func (m *reservedMemory) unmap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = syscall.Munmap(m.buf)
	m.unmapped = true
}

func (m *reservedMemory) enter() bool {
	if !m.calls.Enter() {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.short = false
	return true
}

func (m *reservedMemory) exit() { m.calls.Exit() }

// size returns the bytes committed.
func (m *reservedMemory) size() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(m.committed)
}

func (m *reservedMemory) refused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.short
}
