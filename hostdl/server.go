package hostdl

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/viacodec/viacodec/core"
)

// Server serves the batches published in a Table over HTTP: their
// manifests, ranged reads of their items (written straight from the views
// the table hands out) and receipts. It also sweeps the table on an
// interval. A Server is safe for concurrent use; it does not own the table.
type Server struct {
	table   Table
	opts    ServerOptions
	log     *slog.Logger
	ln      *limitListener
	hs      *http.Server
	source  string
	hosts   hostSet
	trusted map[string]bool // ServerOptions.TrustedHops
	sem     *byteSem
	m       metrics
	mux     *http.ServeMux // more endpoints may join it (Host.GrantUpload)

	stopSweep chan struct{}
	sweepDone chan struct{}
	serveDone chan struct{}
	stopOnce  sync.Once
}

// NewServer validates o, listens, and starts serving t. Stop it with Close
// or Shutdown.
func NewServer(t Table, o ServerOptions) (*Server, error) {
	return newServer(t, o, nil)
}

// newServer is NewServer with a wrapper around the handler, for tests that
// break responses on purpose.
func newServer(t Table, o ServerOptions, wrap func(http.Handler) http.Handler) (*Server, error) {
	if t == nil {
		return nil, errors.New("hostdl: NewServer needs a table")
	}
	o, err := o.validate()
	if err != nil {
		return nil, err
	}
	tlsConf, err := serverTLS(o.TLS, o.TLSFiles)
	if err != nil {
		return nil, err
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = o.listen.listen(); err != nil {
			return nil, err
		}
	}
	source, err := o.adv.source(tlsConf != nil, ln.Addr())
	cleartextBeyondLoopback := tlsConf == nil && !(isLocal(ln.Addr()) && o.adv.local())
	if err == nil && cleartextBeyondLoopback && !o.AllowCleartext {
		err = errCleartext(ln.Addr().String(), o.Advertise)
	}
	if err != nil {
		if o.Listener == nil {
			ln.Close()
		}
		return nil, err
	}
	s := &Server{
		table: t, opts: o, log: o.Logger, sem: newByteSem(o.MaxInFlightBytes), source: source,
		stopSweep: make(chan struct{}), sweepDone: make(chan struct{}), serveDone: make(chan struct{}),
	}
	s.ln = newLimitListener(ln, o.MaxConns, o.MaxConnsPerClient, &s.m.connsOpen, &s.m.connsShed)
	s.hosts = newHostSet(ln.Addr(), o.adv.host, o.Hosts)
	s.trusted = make(map[string]bool, len(o.TrustedHops))
	for _, h := range o.TrustedHops {
		s.trusted[h] = true
	}

	// Patterns without methods, so that every error, 405 included, is
	// answered with an error body.
	mux := http.NewServeMux()
	mux.HandleFunc(pathPrefix+"{ref}/manifest", s.only(http.MethodGet, s.handleManifest))
	mux.HandleFunc(pathPrefix+"{ref}/items/{item}", s.only(http.MethodGet, s.handleItem))
	mux.HandleFunc(pathPrefix+"{ref}/receipt", s.only(http.MethodPost, s.handleReceipt))
	if !o.DisableMetrics {
		mux.HandleFunc(o.MetricsPath, s.only(http.MethodGet, s.handleMetrics))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, core.NewError(core.KindProtocol, nil, "hostdl: no such endpoint"))
	})
	s.mux = mux
	var h http.Handler = s.instrument(s.guard(mux))
	if wrap != nil {
		h = wrap(h)
	}
	h = track(h)
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	s.hs = &http.Server{
		Handler:           h,
		Protocols:         protos,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		ErrorLog:          log.New(cutLog{o.Logger}, "", 0),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 256},
		// "OPTIONS *" too goes through the handlers (404), not net/http's own answer.
		DisableGeneralOptionsHandler: true,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, connOf(c))
		},
	}
	go s.serve(tlsConf != nil)
	go s.sweep()
	s.log.Info("hostdl: serving", "source", s.source, "tls", tlsConf != nil)
	if cleartextBeyondLoopback {
		s.log.Warn("hostdl: serving cleartext HTTP beyond loopback: bearer tokens cross the network in the clear",
			"addr", ln.Addr().String(), "source", s.source)
	}
	return s, nil
}

// connKey is the context key of a request's *limitConn.
type connKey struct{}

// track marks a request's connection busy while the request is handled,
// so that the listener closes idle connections first.
func track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _ := r.Context().Value(connKey{}).(*limitConn); c != nil {
			c.begin()
			defer c.done()
		}
		next.ServeHTTP(w, r)
	})
}

// cutLog carries the HTTP server's own error log to the logger at Debug,
// each record cut short: it may quote what a client sent.
type cutLog struct{ l *slog.Logger }

func (c cutLog) Write(p []byte) (int, error) {
	c.l.LogAttrs(context.Background(), slog.LevelDebug, "hostdl: http", slog.String("err", cut(strings.TrimSpace(string(p)), maxLogText)))
	return len(p), nil
}

// hostSet is the hosts a server answers for; any answers all.
type hostSet struct {
	any   bool
	names map[string]bool
}

// newHostSet returns the listening IP, the advertised host and the extra
// hosts, plus "localhost" on loopback; any for a listener not on TCP, or
// on an unspecified address, when neither advertised nor extra names a
// host.
func newHostSet(a net.Addr, advertised string, extra []string) hostSet {
	hs := hostSet{names: map[string]bool{}}
	if t, ok := a.(*net.TCPAddr); ok && !t.IP.IsUnspecified() {
		hs.names[t.IP.String()] = true
		if t.IP.IsLoopback() {
			hs.names["localhost"] = true
		}
	} else if advertised == "" && len(extra) == 0 {
		hs.any = true
	}
	if advertised != "" {
		hs.names[normalHost(advertised)] = true
	}
	for _, h := range extra {
		hs.names[normalHost(h)] = true
	}
	return hs
}

// allows reports whether a request's host (Request.Host: host, host:port,
// [v6]:port) is one of the set's; the port is not compared.
func (hs hostSet) allows(hostport string) bool {
	if hs.any {
		return true
	}
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return hs.names[normalHost(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))]
}

// normalHost writes a host name in lower case without a final dot, and
// an IP in its canonical form.
func normalHost(h string) string {
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func (s *Server) serve(useTLS bool) {
	defer close(s.serveDone)
	var err error
	if useTLS {
		err = s.hs.ServeTLS(s.ln, "", "")
	} else {
		err = s.hs.Serve(s.ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("hostdl: serve", "err", err)
	}
}

// sweep calls Table.Sweep every SweepInterval until the server stops.
func (s *Server) sweep() {
	defer close(s.sweepDone)
	if s.opts.SweepInterval < 0 {
		return
	}
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
			if n := s.table.Sweep(s.opts.Clock()); n > 0 {
				s.log.Info("hostdl: swept idle transactions", "ended", n)
			}
		}
	}
}

// Source returns the server's base URL, for core.EncOptions.Source.
func (s *Server) Source() string { return s.source }

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		BytesServed:   s.m.bytesServed.Load(),
		ConnsOpen:     s.m.connsOpen.Load(),
		ConnsShed:     s.m.connsShed.Load(),
		InFlightBytes: s.sem.inUse(),
		Requests:      s.m.requestsByStatus(),
		HTTP2Requests: s.m.http2.Load(),
		Table:         s.table.Stats(),
	}
}

// Close stops the server at once: it closes the listener and every
// connection, and stops sweeping. Responses being written fail.
func (s *Server) Close() error {
	s.stop()
	err := s.hs.Close()
	<-s.serveDone
	return err
}

// Shutdown stops the server gracefully: it stops accepting connections and
// sweeping, and waits for the responses in progress to end. If ctx ends
// first, it closes the remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	err := s.hs.Shutdown(ctx)
	if err != nil {
		s.hs.Close()
	}
	<-s.serveDone
	return err
}

func (s *Server) stop() {
	s.stopOnce.Do(func() {
		close(s.stopSweep)
		<-s.sweepDone
		s.log.Info("hostdl: stopping", "source", s.source)
	})
}
