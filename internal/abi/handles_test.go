package abi

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

func TestTable(t *testing.T) {
	tab := NewTable()
	m, err := core.Marshal(int64(1))
	if err != nil {
		t.Fatal(err)
	}
	h := tab.Add(m)
	if h <= 0 {
		t.Fatalf("handle %d is not positive", h)
	}
	got, done, err := Use[[]byte](tab, h, "a message")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(m) {
		t.Fatal("Use returned another object")
	}
	done()
	_, _, err = Use[*Decoded](tab, h, "a decode handle")
	abitest.WantKind(t, "wrong handle type", err, core.KindInvalid)
	for _, bad := range []int64{0, -1, h + 1, 1 << 62} {
		_, _, err := Use[[]byte](tab, bad, "a message")
		abitest.WantKind(t, "use of a made-up handle", err, core.KindInvalid)
		abitest.WantKind(t, "release of a made-up handle", tab.Release(bad), core.KindInvalid)
	}
	if tab.Len() != 1 {
		t.Fatalf("%d handles, want 1", tab.Len())
	}
	if err := tab.Release(h); err != nil {
		t.Fatal(err)
	}
	abitest.WantKind(t, "double release", tab.Release(h), core.KindInvalid)
	_, _, err = Use[[]byte](tab, h, "a message")
	abitest.WantKind(t, "use after release", err, core.KindInvalid)
	if h2 := tab.Add(m); h2 == h {
		t.Fatal("handle number reused")
	}
}

// TestUseOfWrongTypeEndsItsUse: a Use refused for the object's type
// registers nothing, so a release does not wait for it.
func TestUseOfWrongTypeEndsItsUse(t *testing.T) {
	tab := NewTable()
	c := &counted{}
	h := tab.Add(c)
	_, _, err := Use[*Decoded](tab, h, "a decode handle")
	abitest.WantKind(t, "wrong handle type", err, core.KindInvalid)
	abitest.Within(t, 5*time.Second, "release after a refused use", func() {
		if err := tab.Release(h); err != nil {
			t.Error(err)
		}
	})
	if c.closes.Load() != 1 {
		t.Fatalf("closed %d times", c.closes.Load())
	}
}

// counted counts its uses, cancels and closes; a use that runs on a
// closed object is an error.
type counted struct {
	uses, cancels, closes atomic.Int64
	usedClosed            atomic.Bool
	stop                  chan struct{} // closed by Cancel, if set
}

func (c *counted) use() {
	c.uses.Add(1)
	if c.closes.Load() != 0 {
		c.usedClosed.Store(true)
	}
}

func (c *counted) Cancel() {
	if c.cancels.Add(1) == 1 && c.stop != nil {
		close(c.stop)
	}
}

func (c *counted) Close() { c.closes.Add(1) }

// TestTableHammer uses and releases handles from many goroutines at once
// (run with -race): every object is cancelled and closed exactly once, and
// no use runs on a closed object.
func TestTableHammer(t *testing.T) {
	tab := NewTable()
	const n = 200
	objs := make([]*counted, n)
	hs := make([]int64, n)
	for i := range objs {
		objs[i] = &counted{}
		hs[i] = tab.Add(objs[i])
	}
	var wg sync.WaitGroup
	var uses atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range hs {
				if o, done, err := Use[*counted](tab, hs[(i+g)%n], "a counter"); err == nil {
					o.use()
					uses.Add(1)
					done()
				} else if KindOf(err) != core.KindInvalid {
					t.Errorf("use: %v", err)
				}
				if err := tab.Release(hs[(i*7+g)%n]); err != nil && KindOf(err) != core.KindInvalid {
					t.Errorf("release: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for _, h := range hs {
		_ = tab.Release(h)
	}
	for i, o := range objs {
		if o.cancels.Load() != 1 || o.closes.Load() != 1 {
			t.Fatalf("object %d cancelled %d and closed %d times", i, o.cancels.Load(), o.closes.Load())
		}
		if o.usedClosed.Load() {
			t.Fatalf("object %d used after it was closed", i)
		}
	}
	if uses.Load() == 0 {
		t.Fatal("no use succeeded: the hammer tested nothing")
	}
	if tab.Len() != 0 {
		t.Fatalf("%d handles left", tab.Len())
	}
}

// TestUsesRunInParallel: uses of one handle run at once; a release cancels
// them (which ends the blocking ones), waits until they have returned and
// only then closes the object.
func TestUsesRunInParallel(t *testing.T) {
	tab := NewTable()
	c := &counted{stop: make(chan struct{})}
	h := tab.Add(c)
	var wg sync.WaitGroup
	var inUse atomic.Int64
	started := make(chan struct{}, 2)
	for range 2 {
		wg.Go(func() {
			o, done, err := Use[*counted](tab, h, "a counter")
			if err != nil {
				t.Error(err)
				return
			}
			inUse.Add(1)
			started <- struct{}{}
			<-o.stop // blocks until the release cancels it
			if o.closes.Load() != 0 {
				t.Error("closed while a use was running")
			}
			inUse.Add(-1)
			done()
		})
	}
	abitest.Within(t, 5*time.Second, "two uses and a release", func() {
		<-started
		<-started // both uses run at once
		if err := tab.Release(h); err != nil {
			t.Error(err)
		}
		if n := inUse.Load(); n != 0 {
			t.Errorf("release returned with %d uses running", n)
		}
		wg.Wait()
	})
	if c.cancels.Load() != 1 || c.closes.Load() != 1 {
		t.Fatalf("cancelled %d and closed %d times", c.cancels.Load(), c.closes.Load())
	}
	_, _, err := Use[*counted](tab, h, "a counter")
	abitest.WantKind(t, "use after release", err, core.KindInvalid)
}
