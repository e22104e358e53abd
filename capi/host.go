package main

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// The by-reference half of the C ABI, in plain Go: a host (the table of
// published batches, the hostdl server that serves them, the hostdl client
// that downloads), its transactions, and downloads into caller memory. The
// exports in exports.go only move arguments between C and these.

// hostOptions mirrors vc_host_options; zero fields mean the defaults.
type hostOptions struct {
	listen       string // default "127.0.0.1:0"
	name         string // receiver id; default a random UUID
	advertise    string // base URL receivers are told; default from the listener
	tlsCert      string // this host's certificate (server, and client certificate)
	tlsKey       string
	tlsCA        string // CA of the peers: verifies servers, and clients with clientAuth
	clientAuth   bool   // the server demands client certificates the CA signed
	refThreshold int64  // default core.DefaultRefThreshold
	concurrency  int64  // parallel ranges per download; default hostdl's
	chunkSize    int64  // range size; default hostdl's
	http2        bool   // download over HTTP/2 instead of HTTP/1.1
}

// host is a Host: it publishes what it encodes by reference and serves it,
// and downloads what it decodes. It is safe for concurrent use: calls
// register with acquire and run in parallel; close cancels the downloads in
// progress, waits for the calls to end, and stops everything.
type host struct {
	name         string
	source       string
	refThreshold int64
	table        *core.Table
	server       *hostdl.Server
	client       *hostdl.Client

	ctx    context.Context // ends when the host closes
	cancel context.CancelCauseFunc

	mu     sync.RWMutex // read-held by each call in progress, write-held by close
	closed bool
}

var _ shared = (*host)(nil)

// errHostClosed is the cause of a download cancelled by the host's close.
var errHostClosed = errors.New("capi: the host was closed")

func newHost(o hostOptions) (*host, error) {
	if o.concurrency < 0 || o.concurrency > math.MaxInt32 {
		return nil, errorf(core.KindInvalid, "option concurrency %d is out of range", o.concurrency)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errorf(core.KindInvalid, "tls_cert_file and tls_key_file go together")
	}
	if o.clientAuth && (o.tlsCA == "" || o.tlsCert == "") {
		return nil, errorf(core.KindInvalid, "tls_client_auth needs tls_cert_file, tls_key_file and tls_ca_file")
	}
	log := libLogger()
	table, err := core.NewTable(core.TableOptions{})
	if err != nil {
		return nil, err
	}
	srvTLS := hostdl.TLSFiles{CertFile: o.tlsCert, KeyFile: o.tlsKey}
	if o.clientAuth {
		srvTLS.CAFile = o.tlsCA
	}
	server, err := hostdl.NewServer(table, hostdl.ServerOptions{
		Addr: o.listen, Advertise: o.advertise, TLSFiles: srvTLS, Logger: log,
	})
	if err != nil {
		return nil, wrap(err, "host server")
	}
	proto := hostdl.HTTP1
	if o.http2 {
		proto = hostdl.HTTP2
	}
	client, err := hostdl.NewClient(hostdl.ClientOptions{
		Receiver: o.name, Protocol: proto, Concurrency: int(o.concurrency), ChunkSize: o.chunkSize,
		TLSFiles: hostdl.TLSFiles{CAFile: o.tlsCA, CertFile: o.tlsCert, KeyFile: o.tlsKey},
		Logger:   log,
	})
	if err != nil {
		server.Close()
		return nil, wrap(err, "host client")
	}
	// Validate the encode options once, so that a bad threshold fails here.
	mode, err := core.EncOptions{ByRef: true, Source: server.Source(), RefThreshold: o.refThreshold}.EncMode()
	if err != nil {
		server.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &host{
		name: client.Receiver(), source: server.Source(), refThreshold: mode.Options().RefThreshold,
		table: table, server: server, client: client, ctx: ctx, cancel: cancel,
	}, nil
}

// libLogger returns the logger of hosts: nothing, unless $VIACODEC_LOG
// names a level (debug, info, warn, error), then text on stderr.
func libLogger() *slog.Logger {
	var level slog.Level
	switch strings.ToLower(os.Getenv("VIACODEC_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func (h *host) acquire() error {
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return errorf(core.KindInvalid, "the host is closed")
	}
	return nil
}

func (h *host) done() { h.mu.RUnlock() }

// closeGrace is how long close lets the responses in progress finish
// before it closes their connections.
const closeGrace = 2 * time.Second

// close cancels the host's downloads, waits for its calls to end, ends its
// open transactions (StateDeleted) and stops its server. Transaction
// handles stay valid and report the outcome.
//
// The server shuts down gracefully, for at most closeGrace: a source
// commonly closes as soon as its last receiver confirmed, and the answer
// to that receipt may still be on its way; closing its connection under it
// would make the receiver retry against a closed port and fail a download
// the source counted as delivered.
func (h *host) close() {
	h.cancel(errHostClosed)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.table.Close()
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	h.server.Shutdown(ctx) // closes what is left when the grace ends
	h.client.Close()
}

// publishOptions mirrors vc_publish_options; zero fields mean the defaults.
type publishOptions struct {
	maxDepth     int64 // default 128
	refThreshold int64 // default the host's
	receivers    int64 // expected receivers; 0: unknown (the transaction ends by timeout)
	quorum       int64
	timeoutNs    int64 // inactivity timeout; default core's 5 minutes
	snapshot     bool  // copy the arrays at publish time
}

// encode encodes the caller's skeleton by reference and publishes the
// batch, if any: the transaction handle is nil when every array went
// inline. Unless snapshot is set, the batch views the slots' memory until
// the transaction handle is closed.
func (h *host) encode(skel []byte, descs []slotDesc, o publishOptions) (*core.Message, *txHandle, error) {
	depth, err := intOption("max_depth", o.maxDepth)
	if err != nil {
		return nil, nil, err
	}
	receivers, err := intOption("receivers", o.receivers)
	if err != nil {
		return nil, nil, err
	}
	quorum, err := intOption("quorum", o.quorum)
	if err != nil {
		return nil, nil, err
	}
	if o.timeoutNs < 0 {
		return nil, nil, errorf(core.KindInvalid, "option timeout_ns %d is negative", o.timeoutNs)
	}
	threshold := o.refThreshold
	if threshold == 0 {
		threshold = h.refThreshold
	}
	mode, err := core.EncOptions{MaxDepth: depth, ByRef: true, RefThreshold: threshold, Source: h.source}.EncMode()
	if err != nil {
		return nil, nil, err
	}
	m, err := encodeSkeletonWith(mode, skel, descs)
	if err != nil {
		return nil, nil, err
	}
	b := m.Batch()
	if b == nil {
		return m, nil, nil
	}
	tx, err := h.table.Publish(b, core.PublishOptions{
		Receivers: receivers, Quorum: quorum, Timeout: time.Duration(o.timeoutNs), Snapshot: o.snapshot,
	})
	if err != nil {
		return nil, nil, err
	}
	views := b
	if o.snapshot {
		views = nil
	}
	return m, newTxHandle(tx, views), nil
}

// fetcher returns what downloads for host h, or for no host (nil): a
// client of the library's own, made on first use, with a random receiver
// id and no TLS files.
func fetcherOf(h *host) (core.Fetcher, context.Context, error) {
	if h != nil {
		return h.client, h.ctx, nil
	}
	defaultClient.once.Do(func() {
		defaultClient.c, defaultClient.err = hostdl.NewClient(hostdl.ClientOptions{Logger: libLogger()})
	})
	if defaultClient.err != nil {
		return nil, nil, wrap(defaultClient.err, "default client")
	}
	return defaultClient.c, context.Background(), nil
}

var defaultClient struct {
	once sync.Once
	c    *hostdl.Client
	err  error
}

// download is one referenced array to fetch into caller memory.
type download struct {
	ref *core.LazyRef
	dst []byte // caller memory: len is ref.Bytes()
}

// fetchInto downloads every ref into its dst through f, batch by batch in
// parallel, under ctx and the deadline timeoutNs (negative: none), and the
// end of life (the host's context). Each distinct item is downloaded once;
// another destination of the same item gets a copy. All or nothing: on
// error the destinations' contents are undefined. It returns only when no
// goroutine writes to the destinations any more.
func fetchInto(life context.Context, f core.Fetcher, downloads []download, timeoutNs int64) error {
	if len(downloads) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := context.AfterFunc(life, func() { cancel(context.Cause(life)) })
	defer stop()
	if timeoutNs >= 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, time.Duration(timeoutNs))
		defer c()
	}

	type group struct {
		batch core.BatchRef
		items []core.FetchItem
	}
	type itemKey struct {
		ref  [16]byte
		item int
	}
	var (
		groups  []*group
		byBatch = map[[16]byte]*group{}
		first   = map[itemKey][]byte{}
		copies  []download // later destinations of an item, filled from its first
	)
	for _, d := range downloads {
		k := itemKey{d.ref.Batch.RefID, d.ref.Item}
		if _, dup := first[k]; dup {
			copies = append(copies, d)
			continue
		}
		first[k] = d.dst
		g := byBatch[d.ref.Batch.RefID]
		if g == nil {
			g = &group{batch: d.ref.Batch}
			byBatch[d.ref.Batch.RefID] = g
			groups = append(groups, g)
		} else if g.batch != d.ref.Batch {
			return errorf(core.KindProtocol, "two different batch descriptors share ref id %s", d.ref.Batch.RefID)
		}
		g.items = append(g.items, core.FetchItem{ID: d.ref.Item, DType: d.ref.DType, Shape: d.ref.Shape, Order: d.ref.Order, Dst: d.dst})
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			if err := f.Fetch(ctx, g.batch, g.items); err != nil {
				errs[i] = err
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		if _, ok := errors.AsType[*core.Error](err); !ok {
			err = core.NewError(core.KindUnavailable, err, "fetch")
		}
		if errors.Is(context.Cause(ctx), errHostClosed) {
			return &abiError{kind: core.KindAborted, msg: "download cancelled", err: errHostClosed}
		}
		return err
	}
	for _, d := range copies {
		copy(d.dst, first[itemKey{d.ref.Batch.RefID, d.ref.Item}])
	}
	return nil
}

// firstError returns the first error that is not the consequence of
// another's cancelling the rest (KindAborted), else the first error.
func firstError(errs []error) error {
	var any error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if core.KindOf(err) != core.KindAborted {
			return err
		}
		if any == nil {
			any = err
		}
	}
	return any
}

// txHandle is a published transaction. Unless the batch is a snapshot, it
// views the caller's memory until close has returned: close ends the
// transaction (StateAborted, if still open) and waits until nothing reads
// that memory any more.
type txHandle struct {
	tx    *core.Transaction
	views *core.Batch // the batch as published, viewing caller memory; nil for a snapshot

	ctx    context.Context // ends when the handle is closed, ending waits
	cancel context.CancelFunc

	mu     sync.RWMutex
	closed bool
}

var _ shared = (*txHandle)(nil)

func newTxHandle(tx *core.Transaction, views *core.Batch) *txHandle {
	ctx, cancel := context.WithCancel(context.Background())
	return &txHandle{tx: tx, views: views, ctx: ctx, cancel: cancel}
}

func (t *txHandle) acquire() error {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return errorf(core.KindInvalid, "the transaction handle is released")
	}
	return nil
}

func (t *txHandle) done() { t.mu.RUnlock() }

func (t *txHandle) close() {
	t.cancel()
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.tx.Abort()
	<-t.tx.Done() // no serve of the items is in progress any more
	if t.views != nil {
		// The first manifest of a batch checksums its items, outside the
		// table's count of serves in progress: a receiver that asked for
		// it just before the transaction ended may still be reading. Such
		// a receiver is in the outcome; Manifest returns once that
		// computation is over (or, if it never started, does it now).
		if out, _ := t.tx.Outcome(); len(out.Receivers) > 0 {
			t.views.Manifest()
		}
		t.views = nil
	}
}

// status returns the transaction as it is now, and whether it has ended
// and stopped reading the caller's memory (bar close's last check).
func (t *txHandle) status() (core.Outcome, bool) {
	if out, ok := t.tx.Outcome(); ok {
		return out, true
	}
	state, rs := t.tx.Status()
	return core.Outcome{State: state, Receivers: rs}, false
}

// wait waits for the transaction to end, for at most timeoutNs (negative:
// no limit, 0: just look). It fails with KindTimeout when time runs out and
// KindAborted when the handle is released meanwhile.
func (t *txHandle) wait(timeoutNs int64) (core.Outcome, error) {
	if out, ok := t.tx.Outcome(); ok {
		return out, nil
	}
	ctx := t.ctx
	if timeoutNs >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutNs))
		defer cancel()
	}
	out, err := t.tx.Wait(ctx)
	if err != nil {
		if out, ok := t.tx.Outcome(); ok { // ended as time ran out
			return out, nil
		}
		if t.ctx.Err() != nil {
			return core.Outcome{}, errorf(core.KindAborted, "the transaction handle was released while waiting")
		}
		return core.Outcome{}, err
	}
	return out, nil
}

// refView views the caller's destination of a referenced array.
func refView(p unsafe.Pointer, n uint64) []byte {
	if n == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(p), int(n))
}
