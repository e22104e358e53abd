package hostdl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/viacodec/viacodec/core"
)

// Server serves the batches published in a Table over HTTP: their
// manifests, ranged reads of their items (written straight from the views
// the table hands out) and receipts. It also sweeps the table on an
// interval. A Server is safe for concurrent use; it does not own the table.
type Server struct {
	table  Table
	opts   ServerOptions
	log    *slog.Logger
	ln     *limitListener
	hs     *http.Server
	source string
	sem    *byteSem
	m      metrics

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
		if ln, err = net.Listen("tcp", o.Addr); err != nil {
			return nil, fmt.Errorf("hostdl: listen: %w", err)
		}
	}
	s := &Server{
		table: t, opts: o, log: o.Logger, sem: newByteSem(o.MaxInFlightBytes),
		stopSweep: make(chan struct{}), sweepDone: make(chan struct{}), serveDone: make(chan struct{}),
	}
	s.ln = newLimitListener(ln, o.MaxConns, &s.m.connsOpen)
	s.source = o.Advertise
	if s.source == "" {
		scheme := "http://"
		if tlsConf != nil {
			scheme = "https://"
		}
		s.source = scheme + ln.Addr().String()
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
	var h http.Handler = s.instrument(mux)
	if wrap != nil {
		h = wrap(h)
	}
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
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 256},
	}
	go s.serve(tlsConf != nil)
	go s.sweep()
	s.log.Info("hostdl: serving", "source", s.source, "tls", tlsConf != nil)
	return s, nil
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
