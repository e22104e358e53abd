package hostdl

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// handshakeRTT returns the round-trip time the kernel measured on c's
// handshake (TCP_INFO's smoothed RTT, which the handshake seeds), or false
// when it has none.
func handshakeRTT(c *net.TCPConn) (time.Duration, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var rtt uint32
	if err := rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			rtt = ti.Rtt
		}
	}); err != nil || rtt == 0 {
		return 0, false
	}
	return time.Duration(rtt) * time.Microsecond, true
}
