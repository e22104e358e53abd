package hostdl

import (
	"runtime"
	"syscall"
)

// inBackground runs f on an OS thread of its own at the lowest CPU
// priority (nice 19), so that work done ahead, such as a batch's piece
// sums, takes only CPU time that nothing else wants. Call it from a
// goroutine that ends with it: the thread ends with that goroutine, as an
// unprivileged thread cannot raise its priority back.
func inBackground(f func()) {
	runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
	// On Linux the priority of PRIO_PROCESS with a thread id is that
	// thread's alone. If it cannot be lowered, f runs as it is.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
	f()
}
