package hostdl

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener keeps at most max connections open, and at most perClient
// (when not 0) from one client IP address. A connection is idle while no
// request on it is being handled (handlers bracket their work with busy
// and done); idle ones are the first to go: a new connection that finds
// the server at a limit makes the listener close the connection under
// that limit idle longest. When none is idle, a connection over max waits
// (and with it the listen backlog), and one over perClient is closed.
type limitListener struct {
	net.Listener
	max, perClient int
	open, shed     *atomic.Int64 // gauges for the metrics

	mu     sync.Mutex
	cond   *sync.Cond // signalled when a connection closes or goes idle
	conns  map[*limitConn]struct{}
	byIP   map[string]int
	closed bool
}

func newLimitListener(l net.Listener, max, perClient int, open, shed *atomic.Int64) *limitListener {
	ll := &limitListener{Listener: l, max: max, perClient: perClient, open: open, shed: shed,
		conns: map[*limitConn]struct{}{}, byIP: map[string]int{}}
	ll.cond = sync.NewCond(&ll.mu)
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		fitSendBuffer(c)
		lc := &limitConn{Conn: c, l: l, ip: clientIP(c.RemoteAddr()), idleSince: time.Now()}
		if l.admit(lc) {
			return lc, nil
		}
		c.Close()
		if l.isClosed() {
			return nil, net.ErrClosed
		}
		l.shed.Add(1)
	}
}

// admit records c, closing idle connections to make room for it; it waits
// while the server is at max with none idle. It returns false when c must
// be refused: over perClient with none of its client's idle, or the
// listener closed.
func (l *limitListener) admit(c *limitConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		var victim *limitConn
		switch {
		case l.closed:
			return false
		case l.perClient > 0 && l.byIP[c.ip] >= l.perClient:
			if victim = l.idlestLocked(c.ip); victim == nil {
				return false
			}
		case len(l.conns) >= l.max:
			if victim = l.idlestLocked(""); victim == nil {
				l.cond.Wait()
				continue
			}
		default:
			l.conns[c] = struct{}{}
			l.byIP[c.ip]++
			l.open.Store(int64(len(l.conns)))
			return true
		}
		// Forget the victim now, so that a request that reaches it
		// meanwhile cannot make it busy again, and close it unlocked.
		l.forgetLocked(victim)
		l.shed.Add(1)
		l.mu.Unlock()
		victim.Conn.Close()
		l.mu.Lock()
	}
}

// idlestLocked returns the connection idle longest, from client ip ("" for
// any), or nil when none is idle. It scans every connection: only a new
// connection at a limit pays for it.
func (l *limitListener) idlestLocked(ip string) *limitConn {
	var best *limitConn
	for c := range l.conns {
		if c.busy == 0 && (ip == "" || c.ip == ip) && (best == nil || c.idleSince.Before(best.idleSince)) {
			best = c
		}
	}
	return best
}

func (l *limitListener) forgetLocked(c *limitConn) {
	if _, ok := l.conns[c]; !ok {
		return
	}
	delete(l.conns, c)
	if l.byIP[c.ip]--; l.byIP[c.ip] == 0 {
		delete(l.byIP, c.ip)
	}
	l.open.Store(int64(len(l.conns)))
	l.cond.Broadcast()
}

func (l *limitListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *limitListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// clientIP returns the IP of a remote address, or its string for other
// kinds of address.
func clientIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return a.String()
}

// limitConn is a connection a limitListener counts.
type limitConn struct {
	net.Conn
	l  *limitListener
	ip string

	// Guarded by l.mu.
	busy      int       // requests being handled on it
	idleSince time.Time // when busy last fell to 0, or when it was accepted
}

// ReadFrom passes net/http's ReadFrom on to the connection's own: a
// *net.TCPConn hands a net.Buffers (handleItem's pieces) to writev.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	c.l.forgetLocked(c)
	c.l.mu.Unlock()
	return err
}

// begin marks the start of a request's handling on c.
func (c *limitConn) begin() {
	c.l.mu.Lock()
	c.busy++
	c.l.mu.Unlock()
}

// done marks its end; c is idle again when no other request runs on it.
func (c *limitConn) done() {
	c.l.mu.Lock()
	if c.busy--; c.busy == 0 {
		c.idleSince = time.Now()
		c.l.cond.Broadcast()
	}
	c.l.mu.Unlock()
}

// connOf returns the limitConn under a connection the HTTP server
// handed to its ConnContext hook (a TLS connection wraps it).
func connOf(c net.Conn) *limitConn {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	lc, _ := c.(*limitConn)
	return lc
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
