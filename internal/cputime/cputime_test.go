package cputime

import (
	"runtime"
	"testing"
	"time"
)

// TestProcess: the CPU time grows while this process computes.
func TestProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU time is read on Unix; the test runs on Linux")
	}
	before := Process()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if after := Process(); before <= 0 || after-before < 10*time.Millisecond {
		t.Fatalf("CPU time %v, then %v after 50 ms of work (%d)", before, after, x)
	}
}
