package hostdl

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// Relay defaults. A zero field in RelayOptions means its default.
const (
	DefaultRelayBudget = 256 << 20       // bytes of pieces a relay holds in memory
	DefaultRelayIdle   = 5 * time.Minute // a batch nobody asked about for this long is forgotten
	DefaultRelayPiece  = DefaultChunkSize
	DefaultRelayLinger = 10 * time.Second // pieces kept after every receiver so far confirmed
)

// RelayOptions configures a Relay. The zero value is a safe default.
type RelayOptions struct {
	// Server is where the relay's receivers reach it (its Addr, TLS,
	// Advertise, limits). Its SweepInterval paces the forgetting of idle
	// batches.
	Server ServerOptions
	// Client is how the relay reaches upstream: the holder or origin a
	// message named (TLS, timeouts, retries). Its Receiver is not used:
	// every upstream request carries the id of the receiver it is for.
	Client ClientOptions
	// Budget bounds the bytes of pieces held in memory, fetched or being
	// fetched: 16 MiB to 1 TiB, default 256 MiB. Beyond it the pieces
	// used longest ago that no receiver is reading are spilled to
	// SpillDir, or else dropped (and fetched again if asked for); when
	// every piece is being read, a request is refused with 503
	// (unavailable), which receivers retry.
	Budget int64
	// SpillDir, if set, is a directory where pieces beyond the budget are
	// kept, one file per batch, removed when the batch is forgotten.
	SpillDir string
	// Idle forgets a batch, and frees what it holds, when none of its
	// receivers asked for anything for this long: 1ms to 24h, default
	// 5 min.
	Idle time.Duration
	// Linger frees the pieces of a batch whose every receiver so far
	// confirmed once none asked for anything for this long, keeping them
	// that long for receivers still to come: 1ms to 24h, default 10 s;
	// negative frees them with the last receipt.
	Linger time.Duration
	// PieceSize is the span fetched upstream at once: 64 KiB to 64 MiB,
	// default 4 MiB (the receivers' default ChunkSize, so that a range
	// a receiver asks for is one piece), rounded up to whole manifest
	// blocks.
	PieceSize int64
	// Logger receives the relay's records; default slog.Default().
	Logger *slog.Logger
}

func (o RelayOptions) validate() (RelayOptions, error) {
	f := fields{typ: "RelayOptions"}
	bound(&f, "Budget", &o.Budget, DefaultRelayBudget, 16<<20, 1<<40)
	bound(&f, "Idle", &o.Idle, DefaultRelayIdle, time.Millisecond, 24*time.Hour)
	bound(&f, "PieceSize", &o.PieceSize, DefaultRelayPiece, 64<<10, 64<<20)
	if o.Linger >= 0 {
		bound(&f, "Linger", &o.Linger, DefaultRelayLinger, time.Millisecond, 24*time.Hour)
	}
	if f.err != nil {
		return o, core.NewError(core.KindInvalid, f.err, "hostdl: relay options")
	}
	if o.SpillDir != "" {
		if st, err := os.Stat(o.SpillDir); err != nil || !st.IsDir() {
			return o, core.NewError(core.KindInvalid, err, "hostdl: RelayOptions.SpillDir %q is not a directory", o.SpillDir)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Server.Logger == nil {
		o.Server.Logger = o.Logger
	}
	if o.Client.Logger == nil {
		o.Client.Logger = o.Logger
	}
	return o, nil
}

// Relay is a pull-through caching relay: a hop that forwards messages
// (Forward) re-points their batches at itself, and then serves each
// batch to any number of receivers while fetching every piece of it
// from upstream once. It checks each piece against the origin's
// checksums before serving it, forwards each receiver's manifest request
// and receipt upstream under that receiver's id (so receipts count at
// the origin, end to end, and the relay never counts as a receiver),
// keeps its memory within a budget, and frees what it holds when its
// receivers are done or idle. Relays chain: a relay's upstream is the
// holder the message named, which may be another relay.
//
// The protocol it speaks on both sides is docs/download-protocol.md;
// §8 says what a relay does and may do.
type Relay struct {
	opts   RelayOptions
	id     string // sent upstream as Viacodec-Via: the hop the origin counts pieces and receipts of
	log    *slog.Logger
	up     *Client
	server *Server
	pass   *core.DecMode

	ctx    context.Context // ends when Close starts: cancels upstream fetches
	cancel context.CancelFunc
	loads  sync.WaitGroup // piece loads in flight

	mu      sync.Mutex
	batches map[uuid.UUID]*heldBatch
	held    int64  // bytes of pieces in memory or being loaded
	peak    int64  // most bytes held at once
	tick    uint64 // use counter, for least-recently-used eviction
	closed  bool

	upBytes  atomic.Int64 // verified bytes fetched upstream
	upPieces atomic.Int64 // pieces fetched upstream
	spilled  atomic.Int64 // bytes written to spill files
	refused  atomic.Int64 // requests refused for want of budget
	served   atomic.Int64 // bytes handed to receivers
	serves   atomic.Int64 // ranges handed to receivers
}

// NewRelay validates o and starts the relay's server.
func NewRelay(o RelayOptions) (*Relay, error) {
	o, err := o.validate()
	if err != nil {
		return nil, err
	}
	up, err := NewClient(o.Client)
	if err != nil {
		return nil, err
	}
	pass, err := core.DecOptions{PassThrough: true}.DecMode()
	if err != nil {
		up.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		opts: o, id: "relay-" + uuid.NewString(), log: o.Logger, up: up, pass: pass, ctx: ctx, cancel: cancel,
		batches: map[uuid.UUID]*heldBatch{},
	}
	if r.server, err = NewServer(relayTable{r}, o.Server); err != nil {
		cancel()
		up.Close()
		return nil, err
	}
	return r, nil
}

// Source returns the relay's base URL: the holder it writes into the
// messages it forwards.
func (r *Relay) Source() string { return r.server.Source() }

// Server returns the relay's server (its address, counters).
func (r *Relay) Server() *Server { return r.server }

// Forward returns msg with every batch re-pointed at the relay (its
// holder set to Source), and holds those batches: from now on the relay
// serves them to their receivers, fetching from the holder msg named,
// or from the origin when it named none. The body is copied byte for
// byte; nothing is downloaded yet. Forward the returned message instead
// of msg.
func (r *Relay) Forward(msg []byte) ([]byte, error) {
	return r.pass.Rehold(msg, func(b core.BatchRef) (string, error) {
		if strings.HasPrefix(b.Holder, ObjectHolder) {
			return b.Holder, nil // an object store serves every receiver itself
		}
		if err := r.Hold(b); err != nil {
			return "", err
		}
		return r.Source(), nil
	})
}

// Hold makes the relay serve batch b, fetching it from b.Where(). Forward
// calls it for every batch of a message; holding a batch again refreshes
// it. A batch held under another token is an error (KindAuth).
func (r *Relay) Hold(b core.BatchRef) error {
	up, err := r.up.resolve(b.Where())
	if err != nil {
		return err
	}
	if b.Where() == r.Source() {
		return core.NewError(core.KindInvalid, nil, "hostdl: relay: %s is already held here", b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return core.NewError(core.KindInvalid, ErrClosed, "hostdl: relay: hold %s: the relay is closed", b)
	}
	if hb := r.batches[b.RefID]; hb != nil {
		if !hb.ref.TokenEqual(b.Token[:]) {
			return core.NewError(core.KindAuth, nil, "hostdl: relay: %s is held under another token", b)
		}
		hb.last = time.Now()
		return nil
	}
	r.batches[b.RefID] = &heldBatch{
		ref: b, upstream: up.String(), auth: "Bearer " + hex.EncodeToString(b.Token[:]),
		pieces: map[pieceKey]*piece{}, spilledAt: map[pieceKey]spilled{},
		receivers: map[string]*relayReceiver{}, hops: map[string]*core.Served{}, last: time.Now(),
	}
	r.log.LogAttrs(r.ctx, slog.LevelDebug, "hostdl: relay holds a batch",
		slog.String("ref", b.RefID.String()), slog.String("upstream", up.String()))
	return nil
}

// RelayStats are a relay's counters.
type RelayStats struct {
	Batches        int   // batches held
	HeldBytes      int64 // bytes of pieces in memory now
	PeakBytes      int64 // most bytes of pieces in memory at once
	UpstreamBytes  int64 // verified bytes fetched upstream
	UpstreamPieces int64 // pieces fetched upstream
	SpilledBytes   int64 // bytes written to spill files
	Refused        int64 // requests refused because the budget was full of pieces in use
	Server         ServerStats
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	st := RelayStats{Batches: len(r.batches), HeldBytes: r.held, PeakBytes: r.peak}
	r.mu.Unlock()
	st.UpstreamBytes, st.UpstreamPieces = r.upBytes.Load(), r.upPieces.Load()
	st.SpilledBytes, st.Refused = r.spilled.Load(), r.refused.Load()
	st.Server = r.server.Stats()
	return st
}

// Close stops serving, cancels the fetches upstream, and frees every
// batch (spill files included). Closing again does nothing.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	err := r.server.Close()
	r.loads.Wait()
	r.up.Close()
	r.mu.Lock()
	for id, b := range r.batches {
		r.forgetLocked(id, b)
	}
	r.mu.Unlock()
	return err
}

// Shutdown is Close after letting the responses in progress end, until
// ctx ends.
func (r *Relay) Shutdown(ctx context.Context) error {
	err := r.server.Shutdown(ctx)
	if cerr := r.Close(); err == nil && !errors.Is(cerr, ErrClosed) {
		err = cerr
	}
	return err
}

func (r *Relay) String() string { return fmt.Sprintf("relay at %s", r.Source()) }
