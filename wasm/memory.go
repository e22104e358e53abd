package wasm

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// guestMemory is the linear memory of one guest instance, capped at the
// runtime's memory limit: the runtime grows it through Reallocate, and
// each call into the guest brackets itself with enter and exit so that
// the memory is never unmapped under running guest code.
type guestMemory interface {
	experimental.LinearMemory
	// enter registers a call; false if the memory was freed.
	enter() bool
	exit()
	// size returns the bytes in use.
	size() uint64
	// refused reports whether a grow was refused since the call in
	// flight entered: the guest then ran out of memory, whatever its
	// runtime reports.
	refused() bool
}

// sliceMemory is guest memory in a Go slice: the fallback where address
// space cannot be reserved. Growth copies; the garbage collector frees it.
type sliceMemory struct {
	mu    sync.Mutex
	buf   []byte
	max   uint64
	freed bool
	short bool // a grow was refused since the last enter
}

func (m *sliceMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.freed:
		return nil
	case size > m.max:
		m.short = true
		return nil
	case size <= uint64(cap(m.buf)):
		m.buf = m.buf[:size]
	default:
		b := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.max))
		copy(b, m.buf)
		m.buf = b
	}
	return m.buf
}

func (m *sliceMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.freed, m.buf = true, nil
}

func (m *sliceMemory) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.short = false
	return !m.freed
}

func (m *sliceMemory) exit() {}

func (m *sliceMemory) size() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.buf))
}

func (m *sliceMemory) refused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.short
}
