//go:build !linux

package hostdl

import (
	"net"
	"time"
)

// handshakeRTT reports no round-trip time: off Linux every connection
// keeps the system's send buffer (sendbuf_linux.go).
func handshakeRTT(*net.TCPConn) (time.Duration, bool) { return 0, false }
