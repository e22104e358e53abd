package hostdl

import (
	"context"
	"net"
	"time"
)

// A connection to a near peer gets a small send buffer, on both sides: a
// server's, which sends the bytes of downloads, and a client's, which
// sends those of uploads. Left to the kernel, a loopback connection's send
// buffer is 4 MiB (net.ipv4.tcp_wmem's maximum) from the start: that many
// bytes are copied out of the model before the receiver copies them out
// of the socket, and by then they have left the processor's cache (four
// connections' 16 MiB against a 2 MiB L2). With nearSendBuffer they are
// still in cache when the receiver reads them: on loopback a download
// costs about a fifth less CPU per GiB and runs faster, and an upload
// costs a little less (docs/benchmarks.md, "A send buffer that fits the
// cache").
//
// A send buffer caps a connection at about twice its size per round trip
// (the kernel doubles what is set, after capping it at net.core.wmem_max,
// 208 KiB by default, which still keeps the bytes in cache). So only
// connections whose handshake took at most nearRTT get it: same host or
// same rack, where 512 KiB per 200 µs is over 2.5 GB/s per connection.
// Farther ones, and connections whose round trip the system does not
// report, keep the kernel's autotuning.
const (
	nearRTT        = 200 * time.Microsecond
	nearSendBuffer = 256 << 10
)

// fittedDial returns d's DialContext, fitting the send buffer of each
// connection it makes: a Client sends as a server does when it uploads.
func fittedDial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			fitSendBuffer(c)
		}
		return c, err
	}
}

// fitSendBuffers is false only in a test that counts a server's write
// syscalls per piece, which a small send buffer multiplies.
var fitSendBuffers = true

// fitSendBuffer gives c nearSendBuffer when it is a TCP connection to a
// near peer (sendBufferFor). Errors leave the kernel's choice.
func fitSendBuffer(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok || !fitSendBuffers {
		return
	}
	if rtt, ok := handshakeRTT(tc); ok {
		if n := sendBufferFor(rtt); n > 0 {
			_ = tc.SetWriteBuffer(n)
		}
	}
}

// sendBufferFor returns the send buffer for a connection whose handshake
// took rtt: nearSendBuffer up to nearRTT, else 0 (the kernel's).
func sendBufferFor(rtt time.Duration) int {
	if rtt > 0 && rtt <= nearRTT {
		return nearSendBuffer
	}
	return 0
}
