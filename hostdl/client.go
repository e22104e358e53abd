package hostdl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/gate"
)

// Client downloads referenced arrays from hostdl servers: it implements
// core.Fetcher. One Client is one receiver (ClientOptions.Receiver); it is
// safe for concurrent use, also for several fetches of one batch at once,
// and keeps connections open between fetches (for up to 5s idle) until it
// is closed.
type Client struct {
	opts ClientOptions
	log  *slog.Logger
	tr   *http.Transport
	hc   *http.Client

	life context.Context // ends when the client closes, cancelling its fetches
	end  context.CancelCauseFunc

	fetches gate.Gate // the fetches in flight, which Close waits for
}

// ErrClosed is the cause of the errors of a closed Client or Host: work in
// progress that Close cancelled (KindAborted) and calls made after Close
// (KindInvalid). Test for it with errors.Is.
var ErrClosed = errors.New("hostdl: closed")

var _ core.Fetcher = (*Client)(nil)

// NewClient validates o and returns a client.
func NewClient(o ClientOptions) (*Client, error) {
	tlsConf, err := clientTLS(o.TLS, o.TLSFiles)
	if err != nil {
		return nil, err
	}
	if o.Receiver == "" {
		o.Receiver = certReceiver(tlsConf)
	}
	if o, err = o.validate(); err != nil {
		return nil, err
	}
	protos := new(http.Protocols)
	switch o.Protocol {
	case HTTP1:
		protos.SetHTTP1(true)
	case HTTP2:
		protos.SetUnencryptedHTTP2(true) // prior knowledge on http://
		protos.SetHTTP2(true)            // ALPN on https://
	}
	dialer := &net.Dialer{Timeout: o.RequestTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // a source is reached directly, never through $HTTP_PROXY
		DialContext:         fittedDial(dialer),
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: o.RequestTimeout,
		DisableCompression:  true,
		MaxIdleConnsPerHost: o.Concurrency,
		IdleConnTimeout:     idleConnTimeout,
		Protocols:           protos,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: 4<<20 - 1,
			MaxReceiveBufferPerStream:     4<<20 - 1,
			MaxReadFrameSize:              1 << 20,
		},
	}
	hc := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	life, end := context.WithCancelCause(context.Background())
	return &Client{opts: o, log: o.Logger, tr: tr, hc: hc, life: life, end: end}, nil
}

// idleConnTimeout closes idle connections, also ones dialed and never used,
// before a server's first-request header deadline (DefaultReadHeaderTimeout)
// can close them under a request.
const idleConnTimeout = DefaultReadHeaderTimeout / 2

// Receiver returns the receiver id the client reports to sources.
func (c *Client) Receiver() string { return c.opts.Receiver }

// Close cancels the fetches in progress (they fail with KindAborted and
// ErrClosed), waits until they have returned, and closes the client's
// connections. Later fetches fail at once with KindInvalid and ErrClosed.
// Closing again does nothing. Do not call it from a Progress callback.
func (c *Client) Close() {
	if !c.fetches.Close(nil) {
		return
	}
	c.end(ErrClosed)
	c.fetches.Wait()
	c.tr.CloseIdleConnections()
}

// CloseIdleConnections closes the connections no fetch is using now. The
// client stays usable.
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// Fetch implements core.Fetcher: it reads the batch's manifest, checks
// every item against it, downloads the items' bytes in parallel ranges
// straight into their Dst buffers, verifies every piece, and sends the
// receipt. Failed requests are retried with backoff, resuming where they
// broke. Errors are *core.Error; on error the Dst contents are undefined.
func (c *Client) Fetch(ctx context.Context, batch core.BatchRef, items []core.FetchItem) error {
	if !c.fetches.Enter() {
		return core.NewError(core.KindInvalid, ErrClosed, "hostdl: fetch of %s: the client is closed", batch)
	}
	defer c.fetches.Exit()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(c.life, func() { cancel(ErrClosed) })()
	err := c.fetchFrom(ctx, batch.Where(), batch, items)
	if batch.Holder != "" && core.KindOf(err) == core.KindUnavailable && ctx.Err() == nil {
		// The holder is gone (a relay that died): the origin may still
		// serve the batch. Every byte is fetched and checked again.
		c.log.LogAttrs(ctx, slog.LevelInfo, "hostdl: holder unavailable, fetching from the origin",
			slog.String("ref", batch.RefID.String()), slog.String("holder", batch.Holder), slog.String("err", err.Error()))
		if err2 := c.fetchFrom(ctx, batch.Source, batch, items); err2 == nil || core.KindOf(err2) != core.KindUnavailable {
			return err2
		}
	}
	return err
}

// fetchFrom fetches items of batch from the base URL (or name) where, or
// from the object where names (ObjectHolder), with the manifest and the
// receipt at the batch's source.
func (c *Client) fetchFrom(ctx context.Context, where string, batch core.BatchRef, items []core.FetchItem) error {
	f := &fetch{c: c, batch: batch, auth: "Bearer " + hex.EncodeToString(batch.Token[:])}
	if obj, ok := strings.CutPrefix(where, ObjectHolder); ok {
		u, err := url.Parse(obj)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return core.NewError(core.KindUnavailable, err, "hostdl: holder %q is not an object URL", cut(where, maxLogText))
		}
		f.object = u
		where = batch.Source
	}
	base, err := c.resolve(where)
	if err != nil {
		return err
	}
	f.base = base
	return f.run(ctx, items)
}

// ObjectHolder begins a holder that names an object in an object store
// (S3 or compatible) rather than a Host: "object+" and a URL that lets its
// bearer GET the object (a presigned URL). The object holds each item's
// frames (its pieces, each followed by its CRC-32C, as a range's body
// carries them), item after item in the manifest's order; a receiver
// reads the manifest and sends the receipt to the batch's source, and
// reads the frames from the object in ranges, with no credentials of its
// own (docs/download-protocol.md §8.4). Package hostdl/s3store puts
// batches there.
const ObjectHolder = "object+"

// FramedSize is the bytes of an item of n bytes as frames of pieces of
// pieceSize bytes, each followed by its CRC-32C: its size in an object
// (ObjectHolder).
func FramedSize(n, pieceSize int64) int64 {
	return n + crcSize*((n+pieceSize-1)/pieceSize)
}

// resolve turns a Source into a base URL.
func (c *Client) resolve(source string) (*url.URL, error) {
	s := source
	if c.opts.Resolve != nil {
		var err error
		if s, err = c.opts.Resolve(source); err != nil {
			return nil, core.NewError(core.KindUnavailable, err, "hostdl: resolve source %q", source)
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, core.NewError(core.KindUnavailable, err, "hostdl: source %q is not an http:// or https:// base URL", source)
	}
	return u, nil
}

// errStalled is the cause of a request cancelled for want of progress.
var errStalled = errors.New("hostdl: no progress within the request timeout")

// attempt is one request under the stall timer: its context ends when no
// byte arrived for RequestTimeout.
type attempt struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
}

func (c *Client) start(parent context.Context) *attempt {
	ctx, cancel := context.WithCancelCause(parent)
	a := &attempt{ctx: ctx, cancel: cancel, timeout: c.opts.RequestTimeout}
	a.timer = time.AfterFunc(a.timeout, func() { cancel(errStalled) })
	return a
}

func (a *attempt) end() {
	a.timer.Stop()
	a.cancel(nil)
}

// Read reads the response body and restarts the stall timer on progress.
type stallReader struct {
	r interface{ Read([]byte) (int, error) }
	a *attempt
}

func (s stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.a.timer.Reset(s.a.timeout)
	}
	return n, err
}

// requestError turns the failure of a request into a *core.Error: the
// caller's context ending (aborted or timeout), a stall (timeout), a
// certificate refused (auth), or else the source unavailable.
func requestError(parent context.Context, a *attempt, err error, what string) *core.Error {
	if parent.Err() != nil {
		return ctxError(parent, what)
	}
	if errors.Is(context.Cause(a.ctx), errStalled) {
		return core.NewError(core.KindTimeout, errStalled, "hostdl: %s", what)
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		certErr    x509.CertificateInvalidError
		verifyErr  *tls.CertificateVerificationError
		alert      tls.AlertError
		opErr      *net.OpError
		recHdrErr  tls.RecordHeaderError
		netTimeout net.Error
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr),
		errors.As(err, &verifyErr), errors.As(err, &alert),
		errors.As(err, &opErr) && opErr.Op == "remote error": // the peer sent a TLS alert: it refused us
		return core.NewError(core.KindAuth, err, "hostdl: %s: TLS", what)
	case errors.As(err, &recHdrErr):
		return core.NewError(core.KindProtocol, err, "hostdl: %s: TLS", what)
	case errors.As(err, &netTimeout) && netTimeout.Timeout():
		return core.NewError(core.KindTimeout, err, "hostdl: %s", what)
	}
	return core.NewError(core.KindUnavailable, err, "hostdl: %s", what)
}

// ctxError reports the end of the caller's context: KindTimeout for a
// deadline, KindAborted otherwise.
func ctxError(ctx context.Context, what string) *core.Error {
	k := core.KindAborted
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		k = core.KindTimeout
	}
	return core.NewError(k, context.Cause(ctx), "hostdl: %s", what)
}

// retryable reports whether a failed request may succeed if tried again.
func retryable(err error) bool {
	switch core.KindOf(err) {
	case core.KindUnavailable, core.KindTimeout:
		return true
	}
	return false
}

// backoff waits before retry number n (1, 2, ...): BackoffMin doubled
// n-1 times, at most BackoffMax, the second half of it jittered.
func (c *Client) backoff(ctx context.Context, n int, what string) error {
	d := c.opts.BackoffMin << min(n-1, 30)
	if d > c.opts.BackoffMax || d <= 0 {
		d = c.opts.BackoffMax
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(ctx, what)
	}
}
