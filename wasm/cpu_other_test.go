//go:build !linux

package wasm

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
