//go:build !linux

package hostdl

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
