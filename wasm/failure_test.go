package wasm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// works checks that rt still serves: a round trip on whatever instance
// the pool gives.
func works(t *testing.T, rt *Runtime) {
	t.Helper()
	roundTrip(t, rt, map[string]any{"after": arrayOf(t, core.DTypeFloat32, core.RowMajor)})
}

// idle returns the idle instances of rt.
func idle(rt *Runtime) []*instance {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]*instance(nil), rt.idle...)
}

// TestGuestFailures: each way a guest can fail gives the caller an error
// of its kind, closes that instance (it never returns to the pool), and
// the next call works on a fresh one. A warm instance that runs out of
// memory hands the call to a fresh one first. An endless loop (a guest's
// bug, which polls nothing) is stopped with Options.StrictInterrupt.
func TestGuestFailures(t *testing.T) {
	o := Options{MemoryLimit: 32 << 20, MaxIdleMemory: 32 << 20}
	polling := debugRuntime(t, o)
	o.StrictInterrupt = true
	strict := debugRuntime(t, o)
	for _, c := range []struct {
		name    string
		export  string
		args    []uint64
		timeout time.Duration
		kind    core.Kind
		says    string
		strict  bool
	}{
		{"trap", "vc_debug_trap", nil, 0, core.KindInvalid, "out of bounds memory access", false},
		{"panic", "vc_debug_panic", nil, 0, core.KindInvalid, "panic: vc_debug_panic", false},
		{"out of memory", "vc_debug_grow", []uint64{64}, 0, core.KindLimit, "out of memory", false},
		{"deadlock", "vc_debug_deadlock", nil, 0, core.KindInvalid, "deadlock", false},
		{"endless loop", "vc_debug_loop", nil, 200 * time.Millisecond, core.KindTimeout, "deadline", true},
		{"long sleep", "vc_debug_sleep", []uint64{60_000}, 200 * time.Millisecond, core.KindTimeout, "deadline", false},
		{"long sleep, strict", "vc_debug_sleep", []uint64{60_000}, 200 * time.Millisecond, core.KindTimeout, "deadline", true},
	} {
		rt := polling
		if c.strict {
			rt = strict
		}
		t.Run(c.name, func(t *testing.T) {
			works(t, rt)
			before := idle(rt)
			ctx := t.Context()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			start := time.Now()
			var ran []*instance
			err := rt.with(ctx, func(ctx context.Context, in *instance) error {
				ran = append(ran, in)
				var out []byte
				return debugCallOn(ctx, in, false, &out, c.export, c.args...)
			})
			elapsed := time.Since(start)
			wantKind(t, c.name, err, c.kind)
			t.Logf("%s: %v", c.name, err)
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
			if c.timeout > 0 && elapsed > c.timeout+2*time.Second {
				t.Errorf("stopped after %v, deadline %v", elapsed, c.timeout)
			}
			if want := map[bool]int{true: 2, false: 1}[c.kind == core.KindLimit]; len(ran) != want {
				t.Errorf("the call ran on %d instances, want %d", len(ran), want)
			}
			for _, failed := range ran {
				if !failed.broken || !failed.mod.IsClosed() {
					t.Errorf("a failed instance is not closed (broken %v)", failed.broken)
				}
				for _, in := range idle(rt) {
					if in == failed {
						t.Fatal("a failed instance went back to the pool")
					}
				}
			}
			if len(before) > 0 && ran[0] != before[len(before)-1] {
				t.Errorf("the call did not run on the idle instance")
			}
			works(t, rt)
		})
	}
}

// TestCancelFromAnotherGoroutine: cancelling a call's context from
// another goroutine stops the guest (KindAborted), even in an endless
// loop with StrictInterrupt; the runtime serves on. (Without it, a long
// decode stops so: TestInterruptLongDecode.)
func TestCancelFromAnotherGoroutine(t *testing.T) {
	rt := debugRuntime(t, Options{StrictInterrupt: true})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := debugCall(ctx, rt, false, "vc_debug_loop")
	wantKind(t, "cancelled loop", err, core.KindAborted)
	works(t, rt)
}

// TestCloseDuringCall: closing the Runtime from another goroutine stops
// the calls in flight (KindAborted; an endless loop with StrictInterrupt),
// waits for them and refuses new ones; another Runtime serves.
func TestCloseDuringCall(t *testing.T) {
	rt := debugRuntime(t, Options{StrictInterrupt: true})
	works(t, rt)
	started := make(chan struct{})
	errs := make(chan error, 2)
	for _, export := range []string{"vc_debug_loop", "vc_debug_sleep"} {
		go func() {
			errs <- rt.with(t.Context(), func(ctx context.Context, in *instance) error {
				started <- struct{}{}
				var out []byte
				return debugCallOn(ctx, in, false, &out, export, 60_000)
			})
		}()
	}
	<-started
	<-started
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		rt.Close()
		close(closed)
	}()
	for range 2 {
		select {
		case err := <-errs:
			wantKind(t, "call under Close", err, core.KindAborted)
		case <-time.After(5 * time.Second):
			t.Fatal("a call in flight did not stop when the runtime closed")
		}
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	_, err := rt.Version(t.Context())
	wantKind(t, "call after Close", err, core.KindAborted)
	if len(idle(rt)) != 0 {
		t.Fatal("a closed runtime keeps instances")
	}
	works(t, debugRuntime(t, Options{}))
}

// TestModuleClosedUnderCall: the module's memory freed while guest code
// runs (wazero frees it on a close from another goroutine) is unmapped
// only when the call has returned: the guest does not crash the process.
// (A close stops the guest's loop with StrictInterrupt.)
func TestModuleClosedUnderCall(t *testing.T) {
	rt := debugRuntime(t, Options{StrictInterrupt: true})
	var mem guestMemory
	err := rt.with(t.Context(), func(ctx context.Context, in *instance) error {
		mem = in.mem
		time.AfterFunc(100*time.Millisecond, func() { in.mod.Close(context.Background()) })
		var out []byte
		return debugCallOn(ctx, in, false, &out, "vc_debug_loop")
	})
	if err == nil {
		t.Fatal("a loop whose module closed returned no error")
	}
	if m, ok := mem.(*reservedMemory); ok {
		m.mu.Lock()
		freed, deferred, unmapped := m.freed, m.deferred, m.unmapped
		m.mu.Unlock()
		if !freed || !deferred || !unmapped || m.enter() {
			t.Fatalf("after the call: freed %v (during it: %v), unmapped %v, or a call let in; want true, true, true and none", freed, deferred, unmapped)
		}
	}
	works(t, rt)
}
