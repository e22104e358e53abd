package hostdl

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// limitListener accepts at most cap(slots) connections at a time: Accept
// waits for a slot, and closing a connection frees its slot.
type limitListener struct {
	net.Listener
	slots chan struct{}
	open  *atomic.Int64
	done  chan struct{}
	once  sync.Once
}

func newLimitListener(l net.Listener, n int, open *atomic.Int64) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), open: open, done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Add(1)
	return &limitConn{Conn: c, l: l}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.slots
	})
	return err
}

// byteSem is a FIFO weighted semaphore over bytes in flight.
type byteSem struct {
	size int64

	mu      sync.Mutex
	cur     int64
	waiters []*semWaiter
}

type semWaiter struct {
	n     int64
	ready chan struct{}
}

func newByteSem(size int64) *byteSem { return &byteSem{size: size} }

// acquire takes n bytes (n <= size), waiting in line until they are free or
// ctx ends.
func (s *byteSem) acquire(ctx context.Context, n int64) error {
	s.mu.Lock()
	if len(s.waiters) == 0 && s.cur+n <= s.size {
		s.cur += n
		s.mu.Unlock()
		return nil
	}
	w := &semWaiter{n: n, ready: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			s.cur -= n
			s.grantLocked()
		default:
			for i, x := range s.waiters {
				if x == w {
					s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
					break
				}
			}
			s.grantLocked() // the head may have changed
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// release returns n bytes.
func (s *byteSem) release(n int64) {
	s.mu.Lock()
	s.cur -= n
	s.grantLocked()
	s.mu.Unlock()
}

func (s *byteSem) grantLocked() {
	for len(s.waiters) > 0 && s.cur+s.waiters[0].n <= s.size {
		w := s.waiters[0]
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		s.cur += w.n
		close(w.ready)
	}
}

// inUse returns the bytes held now.
func (s *byteSem) inUse() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// waiting returns how many acquires wait.
func (s *byteSem) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters)
}
