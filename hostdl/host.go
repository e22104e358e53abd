package hostdl

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/viacodec/viacodec/core"
)

// Host is one process's end of references, assembled once: a table of the
// batches it publishes, the Server that serves them, the Client that
// downloads what it decodes, TLS, logging, one clock and one source of
// randomness. A Host is safe for concurrent use.
//
// A source encodes with EncMode, publishes the batch with Publish and sends
// the message; a receiver decodes with DecMode, which downloads straight
// from the source and confirms; the source's transaction then ends.
type Host struct {
	table        Table
	server       *Server
	client       *Client
	rand         io.Reader
	refThreshold int64
	grace        time.Duration
	clock        func() time.Time
	uploads      *uploads // grants and uploads held for sources that cannot be reached

	ctx    context.Context // ends when Close starts
	cancel context.CancelCauseFunc

	mu     sync.RWMutex // read-held by Publish, write-held by Close to mark the host closed
	closed bool

	aheadMu   sync.Mutex
	aheadQ    []*core.Transaction // published, their pieces' sums to compute (sumAhead)
	aheadBusy bool
	aheadDone sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// NewHost validates o, makes the table, the client and the server, and
// starts serving. Every option is checked before the server listens.
func NewHost(o HostOptions) (*Host, error) {
	o, so, co, err := o.validate()
	if err != nil {
		return nil, err
	}
	client, err := NewClient(co)
	if err != nil {
		return nil, err
	}
	table, err := o.makeTable()
	if err != nil {
		client.Close()
		return nil, err
	}
	server, err := NewServer(table, so)
	if err != nil {
		client.Close()
		closeTable(table)
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &Host{
		table: table, server: server, client: client, rand: o.Rand,
		refThreshold: o.RefThreshold, grace: o.CloseGrace, clock: o.Clock,
		ctx: ctx, cancel: cancel,
	}
	h.uploads = newUploads(h, o.UploadBudget)
	return h, nil
}

// Source returns the base URL receivers download this host's batches from.
func (h *Host) Source() string { return h.server.Source() }

// Receiver returns the receiver id this host reports to the sources it
// downloads from.
func (h *Host) Receiver() string { return h.client.Receiver() }

// Table returns the table the host serves.
func (h *Host) Table() Table { return h.table }

// Client returns the host's client, a core.Fetcher. Close closes it.
func (h *Host) Client() *Client { return h.client }

// Stats returns the counters of the host's server and table.
func (h *Host) Stats() ServerStats { return h.server.Stats() }

// Context returns a context that ends, with cause ErrClosed, when Close
// starts. Work on the host's behalf that Close must cancel runs under it.
func (h *Host) Context() context.Context { return h.ctx }

// EncMode returns an encode mode that sends arrays by reference from this
// host: o with ByRef set, Source the host's, Rand the host's, and
// RefThreshold the host's when o leaves it zero. Leave o.Source and o.Rand
// unset. Publish the batch of each message it encodes with Publish.
func (h *Host) EncMode(o core.EncOptions) (*core.EncMode, error) {
	if o.Source != "" || o.Rand != nil {
		return nil, core.NewError(core.KindInvalid, nil, "hostdl: Host.EncMode sets EncOptions.Source and Rand; leave them unset")
	}
	o.ByRef, o.Source, o.Rand = true, h.Source(), h.rand
	if o.RefThreshold == 0 {
		o.RefThreshold = h.refThreshold
	}
	return o.EncMode()
}

// DecMode returns a decode mode that downloads referenced arrays with the
// host's client: o with Fetcher set. Leave o.Fetcher unset. Downloads in
// progress when the host closes fail with KindAborted (errors.Is ErrClosed).
// A batch held in the host's own table (one a source uploaded to it) is
// read from the table, without the network, with the same checks and
// receipt.
func (h *Host) DecMode(o core.DecOptions) (*core.DecMode, error) {
	if o.Fetcher != nil {
		return nil, core.NewError(core.KindInvalid, nil, "hostdl: Host.DecMode sets DecOptions.Fetcher; leave it unset")
	}
	o.Fetcher = localFetcher{h}
	return o.DecMode()
}

// publisher is a table that publishes core batches, as *core.Table does.
type publisher interface {
	Publish(*core.Batch, core.PublishOptions) (*core.Transaction, error)
}

// Publish opens a transaction for b, a batch that the host's EncMode made,
// in the host's table: from now until the transaction ends, the server
// serves b's items to whoever holds its token. Nothing reads the items
// before the call returns: the pieces' sums are computed in the background
// (sumAhead), and a piece sent before its sum is known is checksummed as
// it is sent.
//
// A nil b, what Message.Batch gives for a message with every array
// inline, has nothing to serve: Publish opens no transaction and returns
// nil and no error (Python's Host.dumps returns None), so check the
// transaction before waiting on it. After Close, Publish fails with
// KindInvalid (errors.Is ErrClosed); a table from HostOptions.NewTable
// that does not publish core batches, with KindInvalid.
func (h *Host) Publish(b *core.Batch, o core.PublishOptions) (*core.Transaction, error) {
	p, ok := h.table.(publisher)
	if !ok {
		return nil, core.NewError(core.KindInvalid, nil, "hostdl: the host's table (%T) does not publish core batches", h.table)
	}
	if b != nil && b.Ref.Source != h.Source() {
		return nil, core.NewError(core.KindInvalid, nil, "hostdl: batch %s points to another source; encode it with Host.EncMode", b.Ref)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, core.NewError(core.KindInvalid, ErrClosed, "hostdl: publish: the host is closed")
	}
	if b == nil {
		return nil, nil
	}
	tx, err := p.Publish(b, o)
	if err != nil {
		return nil, err
	}
	h.sumAhead(tx)
	return tx, nil
}

// sumAhead has the sums of tx's pieces computed in the background
// (core.Transaction.SumPieces), one transaction at a time and, on Linux,
// on a thread at the lowest CPU priority: with CPU time nothing else
// wants, between the publish and the receivers' requests, so that the
// server then sends each piece with its sum in one write and checksums
// nothing. A receiver that comes first is served all the same; the
// server sums the pieces it sends before the background does.
func (h *Host) sumAhead(tx *core.Transaction) {
	h.aheadMu.Lock()
	defer h.aheadMu.Unlock()
	h.aheadQ = append(h.aheadQ, tx)
	if h.aheadBusy {
		return
	}
	h.aheadBusy = true
	h.aheadDone.Add(1)
	go func() {
		defer h.aheadDone.Done()
		inBackground(func() {
			for {
				h.aheadMu.Lock()
				if len(h.aheadQ) == 0 || h.ctx.Err() != nil {
					h.aheadQ, h.aheadBusy = nil, false
					h.aheadMu.Unlock()
					return
				}
				tx := h.aheadQ[0]
				h.aheadQ = h.aheadQ[1:]
				h.aheadMu.Unlock()
				tx.SumPieces(h.ctx.Done())
			}
		})
	}()
}

// Close stops the host; it returns once everything has stopped, and
// closing again returns the first Close's result. In order, it:
//
//   - ends Context and closes the client: downloads in progress fail with
//     KindAborted (errors.Is ErrClosed), and Close waits until they have
//     returned, so no goroutine writes into a destination any more;
//   - closes the table (a core.Table ends its open transactions with
//     StateDeleted), and Publish fails from now on;
//   - shuts the server down gracefully: it stops accepting connections
//     and lets the responses in progress finish for up to CloseGrace
//     (default 2s), then closes what is left.
//
// The grace is there because a source commonly closes as soon as its last
// receiver confirmed, and the answer to that receipt may still be on its
// way: closing its connection under it would make the receiver retry
// against a closed port and fail a download the source counted as
// delivered. Connections closed when the grace ran out are not an error.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.cancel(ErrClosed)
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		h.client.Close()
		h.uploads.close()
		err := closeTable(h.table)
		h.aheadDone.Wait() // it stopped at the context's end
		ctx, cancel := context.WithTimeout(context.Background(), h.grace)
		defer cancel()
		if serr := h.server.Shutdown(ctx); serr != nil && !errors.Is(serr, context.DeadlineExceeded) {
			err = errors.Join(err, serr)
		}
		h.closeErr = err
	})
	return h.closeErr
}

// closeTable calls t's Close method, if it has one.
func closeTable(t Table) error {
	switch c := t.(type) {
	case interface{ Close() error }:
		return c.Close()
	case interface{ Close() }:
		c.Close()
	}
	return nil
}
