package hostdl

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path"
	"strings"
	"time"

	"github.com/viacodec/viacodec/core"
)

// Server defaults. A zero field in ServerOptions means its default.
const (
	DefaultAddr              = "127.0.0.1:0"
	DefaultMaxConns          = 1024
	DefaultMinWriteRate      = 64 << 10 // bytes per second
	DefaultMaxInFlightBytes  = 256 << 20
	DefaultMaxRange          = 64 << 20
	DefaultWriteStall        = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultSweepInterval     = time.Second
	DefaultMetricsPath       = "/metrics"
)

// ServerOptions configures a Server. The zero value is a safe default: a
// cleartext server on a free loopback port.
type ServerOptions struct {
	// Addr is the address to listen on, host:port: default "127.0.0.1:0"
	// (loopback, a free port). The port may be a range, first-last
	// ("0.0.0.0:9000-9010", at most 1024 ports): the server takes the
	// first that is free. Ignored when Listener is set.
	Addr string
	// Listener, if set, is used instead of listening on Addr; the server
	// closes it on shutdown.
	Listener net.Listener
	// Advertise is what Source returns, for a server reached through
	// another name (a bind to 0.0.0.0, a proxy, a port mapping): a base
	// URL with its port ("https://site-a.example:8443"), or a host name
	// or IP alone, with or without a port: "site-a.example" advertises
	// "https://site-a.example:<the port bound>" (http:// without TLS).
	// Default: "http://" or "https://" and the listener's address; a
	// server listening on every interface (0.0.0.0, [::]) needs it. A URL
	// without a port or with port 0, and an unspecified IP, are errors:
	// no receiver could use them.
	Advertise string

	// Hosts are more names (or IPs) that requests may give as their host
	// (the Host header, or the host of an absolute URL), besides the
	// listening IP, the host of Advertise and, on loopback, "localhost".
	// The port is not compared. A request for another host is answered
	// 421. A server on a non-TCP listener, with neither Advertise nor
	// Hosts, answers any host.
	Hosts []string
	// AllowCleartext lets a server without TLS listen on, or advertise
	// with http://, an address that is not loopback. Bearer tokens then
	// cross the network in the clear; the server logs a warning. Without
	// it NewServer refuses.
	AllowCleartext bool

	// TLS serves HTTPS with this config (cloned; HTTP/2 is offered by
	// ALPN; MinVersion is raised to TLS 1.2, and a MaxVersion below it is
	// an error). Set ClientAuth tls.RequireAndVerifyClientCert and
	// ClientCAs in it for mutual TLS.
	TLS *tls.Config
	// TLSFiles serves HTTPS from PEM files; a CAFile turns on mutual TLS.
	// Set TLS or TLSFiles, not both. Under mutual TLS a receiver's id is
	// its verified certificate's Subject Common Name.
	TLSFiles TLSFiles
	// TrustedHops are the certificate names (Subject CN) of the relays and
	// holders that may, under mutual TLS, ask and confirm for the
	// receivers behind them: a request whose verified certificate names
	// one is taken for the receiver its Viacodec-Receiver header names
	// (required), fetched by that hop, and a receipt it forwards counts
	// once that receiver or the hop was served every piece
	// (docs/download-protocol.md §5.3). Named receivers
	// (core.PublishOptions.Names) still bound who may be asked for.
	// Without mutual TLS they change nothing: every id is a claim there.
	// Each a receiver id, at most 1024.
	TrustedHops []string

	// MaxConns limits the connections open at once: 1 to 1<<20, default
	// 1024. At the limit, a new connection makes the server close the
	// connection idle longest (one that is not being answered: kept alive
	// between requests, or open without a whole request yet); when none
	// is idle it waits in the listen backlog.
	MaxConns int
	// MaxConnsPerClient, when not 0, limits the connections open at once
	// from one client IP address: 1 to MaxConns. Over it, the client's
	// connection idle longest is closed, or if none is idle the new one.
	MaxConnsPerClient int
	// MaxInFlightBytes limits the item bytes being written at once, over
	// all responses: a range waits until its bytes fit. 1 MiB to 1<<40,
	// default 256 MiB.
	MaxInFlightBytes int64
	// MaxRange is the largest range one request may ask for: 4 KiB to
	// MaxInFlightBytes, default 64 MiB. Larger requests get 416.
	MaxRange int64
	// WriteStall is how long writing one piece (1 MiB) of a response may
	// take before the response is ended, so a stalled receiver does not
	// hold its piece in flight: 1ms to 1h, default 30s.
	WriteStall time.Duration
	// MinWriteRate is the slowest, in bytes per second, a response may be
	// written on average, counting only the time spent writing and
	// allowing one piece (1 MiB) of slack: writing b bytes may take
	// (b + 1 MiB) / MinWriteRate. A response that falls below is ended.
	// 1 KiB to 1 GiB per second, default 64 KiB; negative: no minimum.
	MinWriteRate int64
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

	listen listenAddr // Addr, parsed by validate
	adv    advertised // Advertise, parsed by validate
}

// validate fills in defaults and checks ranges.
func (o ServerOptions) validate() (ServerOptions, error) {
	f := fields{typ: "ServerOptions"}
	conns := int64(o.MaxConns)
	bound(&f, "MaxConns", &conns, DefaultMaxConns, 1, 1<<20)
	o.MaxConns = int(conns)
	perClient := int64(o.MaxConnsPerClient)
	if perClient != 0 {
		bound(&f, "MaxConnsPerClient", &perClient, 0, 1, conns)
	}
	o.MaxConnsPerClient = int(perClient)
	if o.MinWriteRate >= 0 {
		bound(&f, "MinWriteRate", &o.MinWriteRate, DefaultMinWriteRate, 1<<10, 1<<30)
	}
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
	var err error
	if o.Listener == nil {
		if o.listen, err = parseListen(o.Addr); err != nil {
			return o, err
		}
	}
	if o.adv, err = parseAdvertise(o.Advertise); err != nil {
		return o, err
	}
	// Known before listening, so that a host refuses at once; a name that
	// may be loopback is checked once listening (newServer).
	useTLS := o.TLS != nil || o.TLSFiles.CertFile != ""
	if !useTLS && !o.AllowCleartext && (!o.adv.local() || (o.Listener == nil && o.listen.beyondLoopback())) {
		where := o.Addr
		if o.Listener != nil {
			where = o.Listener.Addr().String()
		}
		return o, errCleartext(where, o.Advertise)
	}
	if o.Listener == nil && o.adv.host == "" && o.listen.everyInterface() {
		return o, errNoAdvertise(o.Addr)
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
	if !strings.HasPrefix(o.MetricsPath, "/") || strings.HasPrefix(o.MetricsPath, "/v1/") || path.Clean(o.MetricsPath) != o.MetricsPath {
		return o, fmt.Errorf("hostdl: ServerOptions.MetricsPath %q must be a clean path that starts with / and not with /v1/", o.MetricsPath)
	}
	if len(o.TrustedHops) > core.DefaultMaxReceivers {
		return o, fmt.Errorf("hostdl: ServerOptions.TrustedHops has %d names, more than %d", len(o.TrustedHops), core.DefaultMaxReceivers)
	}
	for _, h := range o.TrustedHops {
		if !core.ValidReceiverID(h) {
			return o, fmt.Errorf("hostdl: ServerOptions.TrustedHops %q is not a receiver id (1 to %d printable ASCII characters)", h, core.MaxReceiverIDLen)
		}
	}
	for _, h := range o.Hosts {
		if h == "" || strings.ContainsAny(h, "/:[] ") && net.ParseIP(h) == nil {
			return o, fmt.Errorf("hostdl: ServerOptions.Hosts %q is not a host name or IP address", h)
		}
	}
	return o, nil
}
