package abihost

import (
	"net"
	"sync"
)

// noListener is the listener of a host that listens on nothing
// (HostOptions.NoListen): it holds no socket and accepts no connection,
// and its Accept returns once it is closed. The host's server runs on it
// unreached, so that the host is assembled as every other (client, TLS,
// receiver id, graceful close).
type noListener struct {
	once   sync.Once
	closed chan struct{}
}

func newNoListener() *noListener { return &noListener{closed: make(chan struct{})} }

func (l *noListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *noListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *noListener) Addr() net.Addr { return noAddr{} }

// noAddr is a noListener's address: no network, no port.
type noAddr struct{}

func (noAddr) Network() string { return "none" }
func (noAddr) String() string  { return "no-listener.invalid" }
