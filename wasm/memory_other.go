//go:build !linux

package wasm

// newGuestMemory returns Go memory of at most max bytes: growth copies,
// and views of guest memory go stale when it grows.
func newGuestMemory(max uint64) guestMemory { return &sliceMemory{max: max} }
