package hostdl

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestSendBufferFor(t *testing.T) {
	for _, tc := range []struct {
		rtt  time.Duration
		want int
	}{
		{0, 0}, // not reported
		{time.Microsecond, nearSendBuffer},
		{nearRTT, nearSendBuffer},
		{nearRTT + time.Microsecond, 0},
		{20 * time.Millisecond, 0},
	} {
		if got := sendBufferFor(tc.rtt); got != tc.want {
			t.Errorf("sendBufferFor(%v) = %d, want %d", tc.rtt, got, tc.want)
		}
	}
}

// TestAcceptFitsSendBuffer accepts a loopback connection through the
// server's listener: its handshake's round trip is reported, and its send
// buffer is the near one (checkFitted), where one accepted without the
// listener keeps the system's.
func TestAcceptFitsSendBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("send buffers are fitted on Linux only")
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var open, shed atomic.Int64
	ll := newLimitListener(tl, 4, 0, &open, &shed)
	defer ll.Close()
	accept := func(accept func() (net.Conn, error)) net.Conn {
		t.Helper()
		d, err := net.Dial("tcp", tl.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		c, err := accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	plain := accept(tl.Accept).(*net.TCPConn)
	lc := accept(ll.Accept).(*limitConn)
	if !checkFitted(t, lc.Conn.(*net.TCPConn)) {
		return
	}
	if got := sndbuf(t, plain); got == nearSndbuf(t) {
		t.Errorf("a connection accepted without the listener has the near send buffer (%d): the test shows nothing", got)
	}
}

// TestClientFitsSendBuffer: a Client's connections get the near send
// buffer too (an upload sends through them).
func TestClientFitsSendBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("send buffers are fitted on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newTestClient(t, ClientOptions{})
	conn, err := c.tr.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checkFitted(t, conn.(*net.TCPConn))
}

// checkFitted checks that c, a loopback connection, has the near send
// buffer, or the system's when its handshake took over nearRTT (a loaded
// machine can take that long even on loopback, and c then keeps the
// system's buffer, as a far connection does). It returns whether c was
// near.
func checkFitted(t *testing.T, c *net.TCPConn) bool {
	t.Helper()
	rtt, ok := handshakeRTT(c)
	if !ok || rtt <= 0 {
		t.Fatalf("handshakeRTT = %v, %v on loopback; want a round trip", rtt, ok)
	}
	if sendBufferFor(rtt) == 0 {
		t.Logf("loopback handshake took %v (over %v)", rtt, nearRTT)
		if got := sndbuf(t, c); got == nearSndbuf(t) {
			t.Errorf("send buffer %d for a connection of %v round trip, want the system's", got, rtt)
		}
		return false
	}
	if got, want := sndbuf(t, c), nearSndbuf(t); got != want {
		t.Errorf("send buffer %d after a %v handshake, want %d", got, rtt, want)
	}
	return true
}

// nearSndbuf returns the SO_SNDBUF Linux reports after nearSendBuffer was
// set: twice it, or twice net.core.wmem_max where that is lower.
func nearSndbuf(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/sys/net/core/wmem_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return 2 * min(nearSendBuffer, max)
}

// sndbuf returns c's SO_SNDBUF.
func sndbuf(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var serr error
	if err := rc.Control(func(fd uintptr) { n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return n
}
