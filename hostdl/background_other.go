//go:build !linux

package hostdl

// inBackground runs f. Only Linux lowers its priority (background_linux.go).
func inBackground(f func()) { f() }
