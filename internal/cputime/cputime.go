// Package cputime reads the CPU time of this process, for the benchmarks
// that quote CPU-time ratios (a decode natively against in a wasm guest,
// a download against raw TCP) rather than wall time, which the load of a
// shared machine swings.
package cputime

import "time"

// Process returns the CPU time, user and system, that this process has
// used, or 0 where it cannot tell.
func Process() time.Duration { return process() }
