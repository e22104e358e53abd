package hostdl

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestByteSemHammer: many goroutines take and return random amounts, some
// giving up while they wait; the bytes held never exceed the size and all
// come back.
func TestByteSemHammer(t *testing.T) {
	const size = 1 << 20
	s := newByteSem(size)
	var held atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				n := 1 + r.Int64N(size)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(200))*time.Microsecond)
				err := s.acquire(ctx, n)
				cancel()
				if err != nil {
					continue
				}
				if h := held.Add(n); h > size {
					t.Errorf("%d bytes held, more than %d", h, size)
				}
				held.Add(-n)
				s.release(n)
			}
		})
	}
	wg.Wait()
	if n := s.inUse(); n != 0 {
		t.Errorf("%d bytes still held", n)
	}
}

// TestByteSemFIFO: a large request first in line is not starved by small
// ones behind it.
func TestByteSemFIFO(t *testing.T) {
	s := newByteSem(10)
	ctx := context.Background()
	s.acquire(ctx, 6)
	bigDone := make(chan struct{})
	go func() { s.acquire(ctx, 10); close(bigDone) }()
	for s.waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	smallDone := make(chan struct{})
	go func() { s.acquire(ctx, 1); close(smallDone) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-smallDone:
		t.Fatal("a small request overtook the large one waiting first")
	default:
	}
	s.release(6)
	<-bigDone
	s.release(10)
	<-smallDone
	s.release(1)
	if s.inUse() != 0 {
		t.Errorf("%d held", s.inUse())
	}
}
