package hostdl

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// heldBatch is one batch a relay serves. Its fields are guarded by the
// relay's mu.
type heldBatch struct {
	ref      core.BatchRef // as the message named it: the token
	upstream string        // base URL of the holder or origin it is fetched from
	auth     string        // "Bearer <hex token>"

	m         *core.Manifest  // the origin's, from the first manifest forwarded
	grid      *core.PieceGrid // m's pieces, which a receipt needs served here
	sums      *core.PieceSums // the pieces' sums, as checked upstream (nil: m's pieces are not the server's)
	pieces    map[pieceKey]*piece
	spilledAt map[pieceKey]spilled // pieces in the spill file
	spill     *os.File
	spillEnd  int64

	receivers map[string]*relayReceiver // downstream receivers
	hops      map[string]*core.Served   // relays below this one (Viacodec-Via): the pieces served to each
	last      time.Time                 // the last request of a receiver
	gone      bool                      // forgotten: pieces are freed as their last reader leaves
}

// relayReceiver is one receiver downstream: the pieces the relay served
// it, and whether the origin counted its receipt.
type relayReceiver struct {
	served    core.Served
	confirmed bool
}

// setManifest keeps m as b's manifest unless it has one. Call with r.mu
// held.
func (b *heldBatch) setManifest(m *core.Manifest) {
	if b.m == nil {
		b.m, b.grid = m, m.PieceGrid()
		if m.BlockSize == writePiece {
			b.sums = core.NewPieceSums(b.grid)
		}
	}
}

// served reports whether every piece was served here to receiver, or to
// hop (a relay below this one, which holds them for its receivers). Call
// with r.mu held.
func (b *heldBatch) served(receiver, hop string) bool {
	if b.grid == nil {
		return false
	}
	if rr := b.receivers[receiver]; rr != nil && b.grid.All(&rr.served) {
		return true
	}
	h := b.hops[hop]
	return hop != "" && h != nil && b.grid.All(h)
}

// receiver returns the record of receiver, made if new. Call with r.mu
// held.
func (b *heldBatch) receiver(id string) *relayReceiver {
	rr := b.receivers[id]
	if rr == nil {
		rr = &relayReceiver{}
		b.receivers[id] = rr
	}
	return rr
}

// spilled is where a piece is in its batch's spill file, and the CRC-32C
// it had when it was written there.
type spilled struct {
	off int64
	crc uint32
}

type pieceKey struct {
	item int
	k    int64 // piece index within the item
}

// piece is one span of one item, fetched upstream (or read back from the
// spill file) once, then served from memory to every receiver asking.
type piece struct {
	b     *heldBatch
	key   pieceKey
	off   int64         // first byte within the item
	ready chan struct{} // closed when data or err is set
	data  []byte        // the verified bytes
	err   error
	pins  int    // readers: serves and loads in progress
	used  uint64 // relay tick of the last use
}

// relayTable is the Table the relay's server serves.
type relayTable struct{ r *Relay }

var _ Table = relayTable{}

// lookup returns the held batch of refID for a request with token, and
// notes the activity. Receivers are recorded only once upstream accepted
// their manifest request (Manifest), so refused requests leave nothing
// behind.
func (t relayTable) lookup(refID uuid.UUID, token []byte, receiver string) (*heldBatch, error) {
	r := t.r
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.batches[refID]
	switch {
	case b == nil:
		return nil, core.NewError(core.KindUnknownRef, nil, "hostdl: relay: ref %s is not held here", refID)
	case !b.ref.TokenEqual(token):
		return nil, core.NewError(core.KindAuth, nil, "hostdl: relay: wrong token for ref %s", refID)
	}
	b.last = time.Now()
	return b, nil
}

// PieceSums returns the sums of the pieces of refID that the relay
// checked as it fetched them from upstream (and any its server computed):
// a piece refetched after it was dropped has the same bytes, checked
// against the origin's sum again. It is nil before the batch's manifest
// is known.
func (t relayTable) PieceSums(refID uuid.UUID, token []byte) *core.PieceSums {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	if b := t.r.batches[refID]; b != nil && b.ref.TokenEqual(token) {
		return b.sums
	}
	return nil
}

// Manifest forwards the receiver's manifest request upstream, under its
// id, and answers with the origin's manifest and the nonce the origin
// issued to it. The first manifest is kept: its items and piece grid
// (the pieces' checksums come with their bytes).
func (t relayTable) Manifest(refID uuid.UUID, token []byte, receiver string) (*core.Manifest, string, error) {
	r := t.r
	b, err := t.lookup(refID, token, receiver)
	if err != nil {
		return nil, "", err
	}
	f := r.upstream(b, receiver)
	if err := f.manifest(r.ctx); err != nil {
		r.dropIfEnded(b, err)
		return nil, "", err
	}
	r.mu.Lock()
	b.setManifest(f.m)
	m := b.m
	b.receiver(receiver)
	r.mu.Unlock()
	return m, f.nonce, nil
}

// ConfirmVia forwards the receiver's receipt upstream, under its id and
// with its nonce and the relay's own id (Viacodec-Via): the origin counts
// it, the relay never does. Only a receiver the relay served every piece
// of has its receipt forwarded; any other is refused here (KindAuth), as
// the origin would refuse it: one served every piece, or forwarded by a
// relay below this one (hop) that was served every piece here. Once every
// receiver the relay has seen confirmed, the batch's pieces are freed
// after Linger (Sweep), or at once when Linger is negative.
func (t relayTable) ConfirmVia(refID uuid.UUID, token []byte, receiver, hop, nonce string) error {
	r := t.r
	b, err := t.lookup(refID, token, receiver)
	if err != nil {
		return err
	}
	r.mu.Lock()
	served := b.served(receiver, hop)
	r.mu.Unlock()
	if !served {
		return core.NewError(core.KindAuth, nil, "hostdl: relay: receipt for ref %s before every piece was served here to receiver %q or to the hop that forwards it", refID, receiver)
	}
	f := r.upstream(b, receiver)
	f.nonce = nonce
	if err := f.receipt(r.ctx); err != nil {
		r.dropIfEnded(b, err)
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b.receiver(receiver).confirmed = true // upstream counted it
	if r.opts.Linger < 0 && b.allConfirmed() {
		r.freePiecesLocked(b)
	}
	return nil
}

// allConfirmed reports whether every receiver seen so far confirmed.
func (b *heldBatch) allConfirmed() bool {
	for _, rr := range b.receivers {
		if !rr.confirmed {
			return false
		}
	}
	return true
}

// ServeVia answers bytes [off, off+n) of an item as one view, for a
// caller of the Table interface: a range within one piece is a view of
// it, one across pieces a copy. The relay's server uses ServePieces, which
// copies nothing.
func (t relayTable) ServeVia(refID uuid.UUID, token []byte, receiver, hop string, item int, off, n int64) ([]byte, func(), error) {
	next, release, err := t.ServePieces(refID, token, receiver, hop, item, off, n)
	if err != nil {
		return nil, nil, err
	}
	first, err := next()
	if err != nil || int64(len(first)) == n {
		if err != nil {
			release()
			return nil, nil, err
		}
		return first, release, nil
	}
	defer release()
	out := append(make([]byte, 0, n), first...)
	for int64(len(out)) < n {
		v, err := next()
		if err != nil {
			return nil, nil, err
		}
		out = append(out, v...)
	}
	return out, func() {}, nil
}

// ServePieces answers bytes [off, off+n) of an item as the views of the
// relay's pieces that hold them, in order: next waits for the next piece
// (fetched once, however many receivers ask) and pins it until the
// following call or release, so that a serve holds one piece of the
// budget at a time and a range across pieces is never copied. After the
// last view next returns io.EOF. The range counts as served to receiver
// (and hop) once its last piece is at hand.
func (t relayTable) ServePieces(refID uuid.UUID, token []byte, receiver, hop string, item int, off, n int64) (next func() ([]byte, error), release func(), err error) {
	r := t.r
	b, err := t.lookup(refID, token, receiver)
	if err != nil {
		return nil, nil, err
	}
	m, err := r.manifestFor(b, receiver)
	if err != nil {
		return nil, nil, err
	}
	mi, ok := m.Item(item)
	if !ok {
		return nil, nil, core.NewError(core.KindUnknownRef, nil, "hostdl: relay: item %d is not in %s", item, b.ref)
	}
	if off < 0 || n <= 0 || off+n > mi.Bytes {
		return nil, nil, core.NewError(core.KindInvalid, nil, "hostdl: relay: range %d+%d is outside item %d of %d bytes", off, n, item, mi.Bytes)
	}
	size := r.pieceSize(m)
	k, last := off/size, (off+n-1)/size
	var pinned *piece
	unpin := func() {
		if pinned != nil {
			r.unpin(pinned)
			pinned = nil
		}
	}
	next = func() ([]byte, error) {
		unpin()
		if k > last {
			return nil, io.EOF
		}
		p, err := r.piece(b, m, mi, k, receiver)
		if err != nil {
			return nil, err
		}
		pinned = p
		if k == last { // the range is served once its last piece is at hand
			r.servedTo(b, receiver, hop, item, off, n)
		}
		k++
		from := max(off, p.off)
		to := min(off+n, p.off+int64(len(p.data)))
		return p.data[from-p.off : to-p.off : to-p.off], nil
	}
	return next, unpin, nil
}

// servedTo records range [off, off+n) of item as served to receiver, and
// to hop when a relay below this one fetched it. Hops are as many as the
// relays below that ask, up to core.DefaultMaxReceivers per batch: each
// is a claim, as a receiver id is.
func (r *Relay) servedTo(b *heldBatch, receiver, hop string, item int, off, n int64) {
	r.served.Add(n)
	r.serves.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	b.grid.Mark(&b.receiver(receiver).served, item, off, n)
	if hop != "" {
		h := b.hops[hop]
		if h == nil && len(b.hops) >= core.DefaultMaxReceivers {
			return // beyond the bound its receipts need their own pieces
		}
		if h == nil {
			h = &core.Served{}
			b.hops[hop] = h
		}
		b.grid.Mark(h, item, off, n)
	}
}

// Sweep forgets the batches no receiver asked about for Idle, and frees
// the pieces of those whose receivers all confirmed and were quiet for
// Linger.
func (t relayTable) Sweep(now time.Time) int {
	r := t.r
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id, b := range r.batches {
		switch quiet := now.Sub(b.last); {
		case quiet >= r.opts.Idle:
			r.forgetLocked(id, b)
			n++
		case quiet >= r.opts.Linger && len(b.pieces)+len(b.spilledAt) > 0 && b.allConfirmed():
			r.freePiecesLocked(b)
		}
	}
	return n
}

// Stats counts held batches as open transactions and the receivers that
// have not confirmed as active.
func (t relayTable) Stats() core.Stats {
	r := t.r
	r.mu.Lock()
	defer r.mu.Unlock()
	st := core.Stats{Open: len(r.batches)}
	for _, b := range r.batches {
		for _, rr := range b.receivers {
			if !rr.confirmed {
				st.ReceiversActive++
			}
		}
	}
	st.BytesServed, st.Serves = r.served.Load(), r.serves.Load()
	return st
}

// upstream returns a fetch of b from its upstream for receiver.
func (r *Relay) upstream(b *heldBatch, receiver string) *fetch {
	base, _ := r.up.resolve(b.upstream) // checked by Hold
	return &fetch{c: r.up, batch: b.ref, base: base, auth: b.auth, who: receiver, via: r.id}
}

// manifestFor returns b's manifest, fetching it upstream for receiver if
// no manifest was forwarded yet.
func (r *Relay) manifestFor(b *heldBatch, receiver string) (*core.Manifest, error) {
	r.mu.Lock()
	m := b.m
	r.mu.Unlock()
	if m != nil {
		return m, nil
	}
	f := r.upstream(b, receiver)
	if err := f.manifest(r.ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b.setManifest(f.m)
	return b.m, nil
}

// pieceSize is PieceSize rounded up to whole blocks of m.
func (r *Relay) pieceSize(m *core.Manifest) int64 {
	bs := int64(m.BlockSize)
	return (r.opts.PieceSize + bs - 1) / bs * bs
}

// piece returns piece k of item mi, pinned and ready: from memory, or
// loaded once (upstream, or from the spill file) however many receivers
// ask at once. The caller unpins it.
func (r *Relay) piece(b *heldBatch, m *core.Manifest, mi *core.ManifestItem, k int64, receiver string) (*piece, error) {
	key := pieceKey{mi.ID, k}
	size := r.pieceSize(m)
	off := k * size
	n := min(size, mi.Bytes-off)
	r.mu.Lock()
	p := b.pieces[key]
	if p == nil {
		if b.gone || r.closed {
			r.mu.Unlock()
			return nil, core.NewError(core.KindExpired, nil, "hostdl: relay: %s is no longer held", b.ref)
		}
		if err := r.reserveLocked(n); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		p = &piece{b: b, key: key, off: off, ready: make(chan struct{})}
		b.pieces[key] = p
		p.pins++ // the load's
		at, inSpill := b.spilledAt[key]
		spill, sums := b.spill, b.sums
		r.loads.Go(func() { r.load(p, m, mi, n, spill, at, inSpill, sums, receiver) })
	}
	p.pins++
	r.tick++
	p.used = r.tick
	r.mu.Unlock()
	<-p.ready
	if p.err != nil {
		r.unpin(p)
		return nil, p.err
	}
	return p, nil
}

// load fills piece p, of n bytes, from the spill file or upstream; the
// CRCs of the upstream's pieces it checked go to sums, for the relay's
// server to send with them.
func (r *Relay) load(p *piece, m *core.Manifest, mi *core.ManifestItem, n int64, spill *os.File, at spilled, inSpill bool, sums *core.PieceSums, receiver string) {
	buf := make([]byte, n)
	var err error
	if inSpill {
		_, err = spill.ReadAt(buf, at.off)
		if err == nil && core.Checksum(buf) != at.crc {
			err = errors.New("the piece changed on disk") // the disk is checked too
		}
		if err != nil {
			err = core.NewError(core.KindUnavailable, err, "hostdl: relay: read back piece %d of item %d of %s", p.key.k, mi.ID, p.b.ref)
		}
	} else {
		f := r.upstream(p.b, receiver)
		f.m = m
		sum := func(off int64, crc uint32) { sums.Set(mi.ID, off/int64(m.BlockSize), crc) }
		err = f.chunk(r.ctx, chunk{mi: mi, dst: buf, base: p.off, off: p.off, n: n, sum: sum})
		if err == nil {
			r.upBytes.Add(n)
			r.upPieces.Add(1)
		}
	}
	r.mu.Lock()
	if err != nil {
		p.err = err
		delete(p.b.pieces, p.key) // the next request tries again
		r.held -= n
		r.log.LogAttrs(r.ctx, slog.LevelDebug, "hostdl: relay: piece failed",
			slog.String("ref", p.b.ref.RefID.String()), slog.Int("item", mi.ID), slog.Int64("off", p.off), slog.String("err", err.Error()))
	} else {
		p.data = buf
	}
	close(p.ready)
	r.mu.Unlock()
	r.unpin(p)
}

// unpin ends one use of p; a piece of a forgotten batch is freed with its
// last reader.
func (r *Relay) unpin(p *piece) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.pins--
	if p.pins == 0 && p.b.gone && p.data != nil {
		r.held -= int64(len(p.data))
		p.data = nil
	}
}

// reserveLocked makes room for n more bytes within the budget, spilling
// or dropping the pieces used longest ago that nobody reads. It fails
// with KindUnavailable (503: receivers retry) when that is not enough.
func (r *Relay) reserveLocked(n int64) error {
	for r.held+n > r.opts.Budget {
		var victim *piece
		for _, b := range r.batches {
			for _, p := range b.pieces {
				if p.pins == 0 && p.data != nil && (victim == nil || p.used < victim.used) {
					victim = p
				}
			}
		}
		if victim == nil {
			r.refused.Add(1)
			return core.NewError(core.KindUnavailable, nil, "hostdl: relay: its budget of %d bytes is held by pieces being read", r.opts.Budget)
		}
		r.evictLocked(victim)
	}
	r.held += n
	r.peak = max(r.peak, r.held)
	return nil
}

// evictLocked takes p out of memory: into the batch's spill file when
// there is a SpillDir (the write is under the lock: spilling is the slow
// path of receivers that drifted apart), else away.
func (r *Relay) evictLocked(p *piece) {
	b := p.b
	delete(b.pieces, p.key)
	if r.opts.SpillDir != "" {
		if err := r.spillLocked(b, p); err != nil {
			r.log.LogAttrs(r.ctx, slog.LevelWarn, "hostdl: relay: spill failed; the piece will be fetched again",
				slog.String("err", err.Error()))
		}
	}
	r.held -= int64(len(p.data))
	p.data = nil
}

func (r *Relay) spillLocked(b *heldBatch, p *piece) error {
	if b.spill == nil {
		f, err := os.CreateTemp(r.opts.SpillDir, "viacodec-relay-*.spill")
		if err != nil {
			return err
		}
		b.spill = f
	}
	if _, ok := b.spilledAt[p.key]; ok {
		return nil // already there from an earlier eviction
	}
	if _, err := b.spill.WriteAt(p.data, b.spillEnd); err != nil {
		return err
	}
	b.spilledAt[p.key] = spilled{b.spillEnd, core.Checksum(p.data)}
	b.spillEnd += int64(len(p.data))
	r.spilled.Add(int64(len(p.data)))
	return nil
}

// freePiecesLocked frees the pieces of b nobody is reading, and its spill
// file; b stays held, and a later receiver has its pieces fetched again.
func (r *Relay) freePiecesLocked(b *heldBatch) {
	for key, p := range b.pieces {
		if p.pins == 0 && p.data != nil {
			delete(b.pieces, key)
			r.held -= int64(len(p.data))
			p.data = nil
		}
	}
	if b.spill != nil && len(b.pieces) == 0 {
		b.spill.Close()
		os.Remove(b.spill.Name())
		b.spill, b.spillEnd = nil, 0
		clear(b.spilledAt)
	}
}

// forgetLocked stops holding b: its pieces are freed now or with their
// last reader, and its spill file is removed.
func (r *Relay) forgetLocked(id uuid.UUID, b *heldBatch) {
	delete(r.batches, id)
	b.gone = true
	for _, p := range b.pieces {
		if p.pins == 0 && p.data != nil {
			r.held -= int64(len(p.data))
			p.data = nil
		}
	}
	if b.spill != nil {
		b.spill.Close() // a read back in progress fails and is not served
		os.Remove(b.spill.Name())
		b.spill = nil
	}
}

// dropIfEnded forgets b when upstream says its transaction is over.
func (r *Relay) dropIfEnded(b *heldBatch, err error) {
	if k := core.KindOf(err); k != core.KindExpired && k != core.KindUnknownRef {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.batches[b.ref.RefID] == b {
		r.forgetLocked(b.ref.RefID, b)
	}
}
