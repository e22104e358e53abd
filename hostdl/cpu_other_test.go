//go:build !linux

package hostdl

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }

// ioCalls is not counted here.
func ioCalls() (reads, writes int64) { return 0, 0 }
