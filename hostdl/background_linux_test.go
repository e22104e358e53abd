package hostdl

import (
	"syscall"
	"testing"
)

// niceOf returns the nice value of the calling thread.
func niceOf() (int, error) {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	return 20 - p, err // the system call answers 20 - nice
}

// TestInBackground: the work runs on a thread at nice 19, and the thread
// that called it keeps its priority.
func TestInBackground(t *testing.T) {
	before, err := niceOf()
	if err != nil {
		t.Fatal(err)
	}
	got, errs := make(chan int, 1), make(chan error, 1)
	go inBackground(func() {
		n, err := niceOf()
		got <- n
		errs <- err
	})
	if n, err := <-got, <-errs; err != nil || n != 19 {
		t.Errorf("background work ran at nice %d (%v), want 19", n, err)
	}
	if n, err := niceOf(); err != nil || n != before {
		t.Errorf("the calling thread went from nice %d to %d (%v)", before, n, err)
	}
}
