package gate

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCloseWhenIdle(t *testing.T) {
	var g Gate
	ran := 0
	if !g.Close(func() { ran++ }) || ran != 1 {
		t.Fatalf("first Close: ran %d times, want once and at once", ran)
	}
	if g.Close(func() { ran++ }) || ran != 1 {
		t.Fatalf("second Close reported first or ran its function (%d)", ran)
	}
	if g.Enter() {
		t.Fatal("Enter after Close succeeded")
	}
	g.Wait() // closed and idle: returns
}

func TestCloseWaitsForUses(t *testing.T) {
	var g Gate
	if !g.Enter() || !g.Enter() {
		t.Fatal("Enter on an open gate failed")
	}
	ran := make(chan struct{})
	g.Close(func() { close(ran) })
	waited := make(chan struct{})
	go func() { g.Wait(); close(waited) }()
	g.Exit()
	select {
	case <-ran:
		t.Fatal("Close's function ran with a use in flight")
	case <-waited:
		t.Fatal("Wait returned with a use in flight")
	case <-time.After(20 * time.Millisecond):
	}
	g.Exit()
	<-ran
	<-waited
}

func TestWaitBeforeClose(t *testing.T) {
	var g Gate
	waited := make(chan struct{})
	go func() { g.Wait(); close(waited) }()
	time.Sleep(10 * time.Millisecond) // let Wait block on an open gate
	select {
	case <-waited:
		t.Fatal("Wait returned on an open gate")
	default:
	}
	g.Close(nil)
	<-waited
}

func TestExitWithoutEnterPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	var g Gate
	g.Exit()
}

// TestHammer: uses from many goroutines against a Close: once Wait
// returns, no use is in flight and none starts, and Close's function ran
// exactly once, after the last use.
func TestHammer(t *testing.T) {
	for range 50 {
		var g Gate
		var inFlight, ran atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 200 {
					if !g.Enter() {
						return
					}
					inFlight.Add(1)
					inFlight.Add(-1)
					g.Exit()
				}
			})
		}
		time.Sleep(time.Duration(time.Now().UnixNano()%200) * time.Microsecond)
		g.Close(func() {
			if inFlight.Load() != 0 {
				t.Error("Close's function ran with a use in flight")
			}
			ran.Add(1)
		})
		g.Wait()
		if n := inFlight.Load(); n != 0 {
			t.Fatalf("%d uses in flight after Wait", n)
		}
		wg.Wait()
		if ran.Load() != 1 {
			t.Fatalf("Close's function ran %d times", ran.Load())
		}
	}
}

// TestSecondUseDuringClose replays, on the gate itself, the deadlock of
// the old C ABI's host lock (a sync.RWMutex): a call held a use and took a
// second one; a release that came in between waited for the first use,
// and the second waited behind the release, forever. A use that reaches a
// closing gate must fail at once instead.
func TestSecondUseDuringClose(t *testing.T) {
	var g Gate
	if !g.Enter() {
		t.Fatal("an open gate refused a use")
	}
	closed := make(chan struct{})
	go func() {
		g.Close(nil)
		g.Wait()
		close(closed)
	}()
	for !g.isClosed() {
		time.Sleep(time.Millisecond)
	}
	if g.Enter() {
		t.Fatal("a closing gate let a use in")
	}
	select {
	case <-closed:
		t.Fatal("Wait returned while a use was in progress")
	default:
	}
	g.Exit()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the last use")
	}
}

func (g *Gate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
