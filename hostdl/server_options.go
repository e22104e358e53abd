package hostdl

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Server defaults. A zero field in ServerOptions means its default.
const (
	DefaultAddr              = "127.0.0.1:0"
	DefaultMaxConns          = 1024
	DefaultMaxInFlightBytes  = 256 << 20
	DefaultMaxRange          = 64 << 20
	DefaultWriteStall        = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultSweepInterval     = time.Second
	DefaultMetricsPath       = "/metrics"

	writePiece = 1 << 20 // a range is written in pieces of this size, each under the stall deadline
)

// ServerOptions configures a Server. The zero value is a safe default: a
// cleartext server on a free loopback port.
type ServerOptions struct {
	// Addr is the address to listen on: default "127.0.0.1:0" (loopback,
	// a free port). Ignored when Listener is set.
	Addr string
	// Listener, if set, is used instead of listening on Addr; the server
	// closes it on shutdown.
	Listener net.Listener
	// Advertise is the base URL Source returns, for a server reached
	// through another name (a bind to 0.0.0.0, a proxy): default
	// "http://" or "https://" and the listener's address.
	Advertise string

	// TLS serves HTTPS with this config (cloned; HTTP/2 is offered by
	// ALPN). Set ClientAuth and ClientCAs in it for mutual TLS.
	TLS *tls.Config
	// TLSFiles serves HTTPS from PEM files; a CAFile turns on mutual TLS.
	// Set TLS or TLSFiles, not both.
	TLSFiles TLSFiles

	// MaxConns limits the connections open at once: 1 to 1<<20, default
	// 1024. Further connections wait in the listen backlog.
	MaxConns int
	// MaxInFlightBytes limits the item bytes being written at once, over
	// all responses: a range waits until its bytes fit. 1 MiB to 1<<40,
	// default 256 MiB.
	MaxInFlightBytes int64
	// MaxRange is the largest range one request may ask for: 4 KiB to
	// MaxInFlightBytes, default 64 MiB. Larger requests get 416.
	MaxRange int64
	// WriteStall is how long writing one piece (1 MiB) of a response may
	// take before the connection is dropped, so a stalled receiver does
	// not hold its bytes in flight forever: 1ms to 1h, default 30s.
	WriteStall time.Duration
	// ReadHeaderTimeout bounds reading a request's headers: 1ms to 1h,
	// default 10s. Go's server also counts a new connection's wait for its
	// first request in it; keep it above the clients' idle timeout (5s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long: 1ms to
	// 24h, default 2m.
	IdleTimeout time.Duration

	// SweepInterval is how often the server calls Table.Sweep: 1ms to 1h,
	// default 1s. Negative: never (the host sweeps).
	SweepInterval time.Duration
	// Clock gives the time passed to Table.Sweep; it should be the
	// Table's own clock. Default time.Now.
	Clock func() time.Time

	// Logger receives structured logs (requests at Debug, failures at
	// Warn); default slog.Default(). No log record ever holds a token.
	Logger *slog.Logger
	// MetricsPath is where the counters are served: default "/metrics".
	// DisableMetrics turns the endpoint off.
	MetricsPath    string
	DisableMetrics bool
}

// validate fills in defaults and checks ranges.
func (o ServerOptions) validate() (ServerOptions, error) {
	f := fields{typ: "ServerOptions"}
	conns := int64(o.MaxConns)
	bound(&f, "MaxConns", &conns, DefaultMaxConns, 1, 1<<20)
	o.MaxConns = int(conns)
	bound(&f, "MaxInFlightBytes", &o.MaxInFlightBytes, DefaultMaxInFlightBytes, 1<<20, 1<<40)
	bound(&f, "MaxRange", &o.MaxRange, min(DefaultMaxRange, o.MaxInFlightBytes), 4<<10, o.MaxInFlightBytes)
	bound(&f, "WriteStall", &o.WriteStall, DefaultWriteStall, time.Millisecond, time.Hour)
	bound(&f, "ReadHeaderTimeout", &o.ReadHeaderTimeout, DefaultReadHeaderTimeout, time.Millisecond, time.Hour)
	bound(&f, "IdleTimeout", &o.IdleTimeout, DefaultIdleTimeout, time.Millisecond, 24*time.Hour)
	if o.SweepInterval >= 0 {
		bound(&f, "SweepInterval", &o.SweepInterval, DefaultSweepInterval, time.Millisecond, time.Hour)
	}
	if f.err != nil {
		return o, f.err
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Advertise != "" {
		u, err := url.Parse(o.Advertise)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return o, fmt.Errorf("hostdl: ServerOptions.Advertise %q is not an http:// or https:// base URL", o.Advertise)
		}
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MetricsPath == "" {
		o.MetricsPath = DefaultMetricsPath
	}
	if !strings.HasPrefix(o.MetricsPath, "/") || strings.HasPrefix(o.MetricsPath, "/v1/") {
		return o, fmt.Errorf("hostdl: ServerOptions.MetricsPath %q must start with / and not with /v1/", o.MetricsPath)
	}
	return o, nil
}
