// Package leakcheck lets tests check that the goroutines they started
// have ended.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// Main runs the tests of m, then cleanup (if not nil), and fails the run
// when, 5 s later, more goroutines run than before the tests. It exits
// the process, as a TestMain must.
func Main(m *testing.M, cleanup func()) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	if code == 0 {
		if stacks, ok := Settle(before, 5*time.Second); !ok {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %d, %d before the tests:\n%s", runtime.NumGoroutine(), before, stacks)
			code = 1
		}
	}
	os.Exit(code)
}

// Settle waits until at most n goroutines run, for at most d; it returns
// every goroutine's stack when they do not get there.
func Settle(n int, d time.Duration) (stacks string, ok bool) {
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			return Stacks(), false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", true
}

// Stacks returns the stack of every goroutine.
func Stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
