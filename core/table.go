package core

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Transaction defaults.
const (
	DefaultTimeout      = 5 * time.Minute  // inactivity before a transaction times out
	DefaultKeepFinished = 10 * time.Minute // how long a finished ref still answers "expired"
	DefaultMaxFinished  = 1 << 16          // finished refs remembered at most
	DefaultMaxReceivers = 1024             // receivers one transaction records, unless it names them
)

// State is where a transaction is; every state but StateOpen is final.
type State uint8

// Transaction states.
const (
	StateOpen      State = iota
	StateCompleted       // every expected receiver confirmed
	StateQuorumMet       // timed out with at least the quorum confirmed
	StateTimedOut        // no activity for the timeout, quorum not met
	StateAborted         // ended by Transaction.Abort
	StateDeleted         // ended by Table.Delete or Table.Close
)

var stateNames = [...]string{"open", "completed", "quorum met", "timed out", "aborted", "deleted"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(?)"
}

// ReceiverState is where one receiver of a transaction is.
type ReceiverState uint8

// Receiver states.
const (
	ReceiverStarted   ReceiverState = iota // asked for the manifest or a range
	ReceiverConfirmed                      // sent a valid receipt
	ReceiverFailed                         // the transaction ended before its receipt
)

var receiverStateNames = [...]string{"started", "confirmed", "failed"}

func (s ReceiverState) String() string {
	if int(s) < len(receiverStateNames) {
		return receiverStateNames[s]
	}
	return "receiver(?)"
}

// ReceiverStatus is one receiver as the source saw it.
type ReceiverStatus struct {
	ID        string
	State     ReceiverState
	Bytes     int64 // item bytes served to it
	FirstSeen time.Time
	LastSeen  time.Time
}

// Outcome is how a transaction ended.
type Outcome struct {
	State     State
	Receivers []ReceiverStatus // in the order they first appeared
}

// Confirmed returns the ids of the receivers that confirmed.
func (o Outcome) Confirmed() []string {
	var ids []string
	for _, r := range o.Receivers {
		if r.State == ReceiverConfirmed {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// TableOptions configures a Table. The zero value is a safe default.
type TableOptions struct {
	// Clock returns the current time; default time.Now. Tests inject a
	// fake one. Expiry still happens only in Sweep.
	Clock func() time.Time
	// Rand is the source of the keys and salts of receipt nonces;
	// default crypto/rand.
	Rand io.Reader
	// KeepFinished is how long a finished transaction's ref id answers
	// KindExpired instead of KindUnknownRef: default 10 minutes.
	KeepFinished time.Duration
	// MaxFinished bounds the finished transactions remembered for
	// KeepFinished: past it the oldest are forgotten first (their ref ids
	// answer KindUnknownRef), so that a burst of short transactions costs
	// bounded memory and never the open ones. Default DefaultMaxFinished;
	// negative is an error.
	MaxFinished int
}

// MaxReceiverIDLen is the longest receiver id, in bytes.
const MaxReceiverIDLen = 256

// ValidReceiverID reports whether id can name a receiver: 1 to
// MaxReceiverIDLen printable ASCII characters (0x20 to 0x7e), so that it
// travels in an HTTP header and a log line as it is.
func ValidReceiverID(id string) bool {
	if id == "" || len(id) > MaxReceiverIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// PublishOptions configures one transaction.
type PublishOptions struct {
	// Names, if not empty, are the receivers the publisher expects, by
	// id. Only they may read the manifest and the items and confirm: a
	// request under any other id is KindAuth and changes nothing. Ids
	// compare byte for byte; each must be a valid id (ValidReceiverID: a
	// name no receiver can have would shut out the one it meant), and none
	// may repeat.
	// An id is what the host reports: hostdl takes it from the verified
	// client certificate under mutual TLS, and otherwise from the request,
	// where it is a claim that any holder of the token can make.
	Names []string
	// Receivers is how many confirmations complete the transaction. With
	// Names it is at most len(Names), and 0 means all of them. Without
	// Names, 0 means unknown: the transaction then ends only by timeout
	// (or Abort / Delete).
	Receivers int
	// MaxReceivers bounds the receivers one transaction records when it
	// does not name them: default the larger of DefaultMaxReceivers (1024)
	// and Receivers, and never below Receivers. A request from a new
	// receiver beyond it is KindLimit and changes nothing. With Names, the
	// names are the bound and MaxReceivers is ignored.
	MaxReceivers int
	// Quorum, when not 0, is how many confirmations make a timed-out
	// transaction end as StateQuorumMet instead of StateTimedOut: at most
	// Receivers. With Receivers 0 and no Names it defaults to 1.
	Quorum int
	// Timeout is the inactivity timeout: default 5 minutes. Activity is a
	// request the table granted (a manifest, a range, a receipt) from a
	// receiver it records; refused requests are none.
	Timeout time.Duration
	// OnDone, if set, is called once with the outcome when the
	// transaction ends, from the call that ended it.
	OnDone func(Outcome)
	// Snapshot copies the items at publish time, so the caller may change
	// its arrays at once. Without it the caller must not change them until
	// the transaction has ended (Wait returns).
	Snapshot bool
}

// Table is the source side of references: the open transactions, each
// serving one published batch. It starts no goroutine and no timer: the host
// calls Sweep. A Table is safe for concurrent use.
type Table struct {
	clock        func() time.Time
	rand         io.Reader
	keepFinished time.Duration
	maxFinished  int

	mu       sync.Mutex
	open     map[uuid.UUID]*Transaction
	finished map[uuid.UUID]finishedRef
	order    []finishedID // the finished refs, oldest first (some forgotten already)
	seq      uint64       // the last finishedRef.seq
	served   int64
	serves   int64
}

type finishedRef struct {
	state State
	at    time.Time
	seq   uint64 // its place in Table.order
}

// finishedID is an entry of Table.order: the ref id and seq of a
// finished ref, stale once the ref is forgotten.
type finishedID struct {
	id  uuid.UUID
	seq uint64
}

// NewTable returns an empty table.
func NewTable(o TableOptions) (*Table, error) {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	switch {
	case o.KeepFinished == 0:
		o.KeepFinished = DefaultKeepFinished
	case o.KeepFinished < 0:
		return nil, errorf(KindInvalid, "TableOptions.KeepFinished %v is negative", o.KeepFinished)
	}
	switch {
	case o.MaxFinished == 0:
		o.MaxFinished = DefaultMaxFinished
	case o.MaxFinished < 0:
		return nil, errorf(KindInvalid, "TableOptions.MaxFinished %d is negative", o.MaxFinished)
	}
	return &Table{
		clock: o.Clock, rand: randOrDefault(o.Rand), keepFinished: o.KeepFinished, maxFinished: o.MaxFinished,
		open: map[uuid.UUID]*Transaction{}, finished: map[uuid.UUID]finishedRef{},
	}, nil
}

// Transaction is one published batch and its receivers.
type Transaction struct {
	table *Table
	batch *Batch
	opts  PublishOptions
	done  chan struct{}

	key   []byte          // receipt nonces are made with it (mint.go)
	names map[string]bool // the named receivers; nil: any, up to opts.MaxReceivers
	grid  *PieceGrid      // the batch's pieces, which receipts need served
	sums  *PieceSums      // made at the first PieceSums, guarded by table.mu until then

	// Guarded by table.mu.
	state      State
	receivers  map[string]*receiver
	order      []string
	hops       map[string]*Served // the hops that fetched pieces for receivers behind them (ServeVia)
	lastActive time.Time
	unseen     bool // served by a holder the table never sees (ServedElsewhere): receipts need no pieces here
	inflight   int  // serves whose bytes are still being written
	outcome    Outcome
	finalized  bool
}

type receiver struct {
	status ReceiverStatus
	served Served
}

// Publish opens a transaction for b. From now until the transaction ends,
// the table serves b's items to whoever holds its token.
func (t *Table) Publish(b *Batch, o PublishOptions) (*Transaction, error) {
	if b == nil {
		return nil, errorf(KindInvalid, "Publish needs a batch")
	}
	names, err := o.check()
	if err != nil {
		return nil, err
	}
	if o.Snapshot {
		b = b.snapshot()
	}
	o.Names = nil // the set holds them; the caller's slice is not kept
	tx := &Transaction{table: t, batch: b, opts: o, names: names, grid: batchPieceGrid(b), done: make(chan struct{}), receivers: map[string]*receiver{}}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tx.key, err = mintNonceKey(t.rand); err != nil {
		return nil, err
	}
	id := b.Ref.RefID
	if _, dup := t.open[id]; dup {
		return nil, errorf(KindInvalid, "batch %s is already published", id)
	}
	if _, dup := t.finished[id]; dup {
		return nil, errorf(KindInvalid, "batch %s was already published", id)
	}
	tx.lastActive = t.clock()
	t.open[id] = tx
	return tx, nil
}

// check validates o and fills in its defaults; it returns the names as a
// set, or nil.
func (o *PublishOptions) check() (map[string]bool, error) {
	var names map[string]bool
	if len(o.Names) > 0 {
		names = make(map[string]bool, len(o.Names))
		for i, n := range o.Names {
			if !ValidReceiverID(n) {
				return nil, errorf(KindInvalid, "PublishOptions.Names[%d] %q is not a receiver id (1 to %d printable ASCII characters)", i, n, MaxReceiverIDLen)
			}
			if names[n] {
				return nil, errorf(KindInvalid, "PublishOptions.Names[%d] %q is repeated", i, n)
			}
			names[n] = true
		}
	}
	switch {
	case o.Receivers < 0 || (names != nil && o.Receivers > len(names)):
		return nil, errorf(KindInvalid, "PublishOptions.Receivers %d is negative or more than the %d names", o.Receivers, len(names))
	case o.MaxReceivers < 0 || (names == nil && o.MaxReceivers > 0 && o.MaxReceivers < o.Receivers):
		return nil, errorf(KindInvalid, "PublishOptions.MaxReceivers %d is negative or below Receivers %d", o.MaxReceivers, o.Receivers)
	case o.Timeout < 0:
		return nil, errorf(KindInvalid, "PublishOptions.Timeout %v is negative", o.Timeout)
	}
	if names != nil {
		if o.Receivers == 0 {
			o.Receivers = len(names)
		}
		o.MaxReceivers = len(names)
	} else if o.MaxReceivers == 0 {
		o.MaxReceivers = max(DefaultMaxReceivers, o.Receivers)
	}
	if o.Quorum < 0 || (o.Receivers > 0 && o.Quorum > o.Receivers) {
		return nil, errorf(KindInvalid, "PublishOptions.Quorum %d is outside 0..%d", o.Quorum, o.Receivers)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return names, nil
}

func (b *Batch) snapshot() *Batch {
	c := &Batch{Ref: b.Ref, Items: slices.Clone(b.Items)}
	for i := range c.Items {
		c.Items[i].Data = slices.Clone(c.Items[i].Data)
	}
	return c
}

// Ref returns the transaction's batch descriptor.
func (tx *Transaction) Ref() BatchRef { return tx.batch.Ref }

// Done is closed when the transaction has ended and no serve of its bytes
// is still under way.
func (tx *Transaction) Done() <-chan struct{} { return tx.done }

// Outcome returns the outcome, and false while the transaction is open.
func (tx *Transaction) Outcome() (Outcome, bool) {
	select {
	case <-tx.done:
		return tx.outcome, true
	default:
		return Outcome{}, false
	}
}

// Wait returns the outcome once the transaction has ended, or an error of
// KindTimeout or KindAborted when ctx ends first.
func (tx *Transaction) Wait(ctx context.Context) (Outcome, error) {
	select {
	case <-tx.done:
		return tx.outcome, nil
	case <-ctx.Done():
		k := KindAborted
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			k = KindTimeout
		}
		return Outcome{}, &Error{Kind: k, Offset: -1, Msg: "waiting for transaction " + tx.batch.Ref.RefID.String(), Err: ctx.Err()}
	}
}

// Abort ends the transaction with StateAborted, if it is still open.
func (tx *Transaction) Abort() {
	tx.table.end(tx, StateAborted)
}

// ServedElsewhere says that the batch's bytes reach its receivers from a
// holder that never asks this table (an object store, hostdl/s3store):
// from now on a receipt needs a nonce only, not pieces served here, as
// the table cannot see the downloads. Without mutual TLS any token holder
// can then confirm with nothing downloaded (docs/download-protocol.md
// §8.4).
func (tx *Transaction) ServedElsewhere() {
	tx.table.mu.Lock()
	defer tx.table.mu.Unlock()
	tx.unseen = true
}

// Status returns the receivers as they are now.
func (tx *Transaction) Status() (State, []ReceiverStatus) {
	tx.table.mu.Lock()
	defer tx.table.mu.Unlock()
	return tx.state, tx.statusLocked()
}

func (tx *Transaction) statusLocked() []ReceiverStatus {
	out := make([]ReceiverStatus, len(tx.order))
	for i, id := range tx.order {
		out[i] = tx.receivers[id].status
	}
	return out
}

// Delete ends the transaction of refID with StateDeleted.
func (t *Table) Delete(refID uuid.UUID) error {
	t.mu.Lock()
	tx := t.open[refID]
	t.mu.Unlock()
	if tx == nil {
		return t.lookupError(refID)
	}
	t.end(tx, StateDeleted)
	return nil
}

// Close ends every open transaction with StateDeleted.
func (t *Table) Close() {
	t.mu.Lock()
	txs := make([]*Transaction, 0, len(t.open))
	for _, tx := range t.open {
		txs = append(txs, tx)
	}
	t.mu.Unlock()
	for _, tx := range txs {
		t.end(tx, StateDeleted)
	}
}

// Sweep ends the transactions idle for their timeout at now, forgets
// finished ones older than KeepFinished, and returns how many it ended.
func (t *Table) Sweep(now time.Time) int {
	t.mu.Lock()
	var idle []*Transaction
	for _, tx := range t.open {
		if now.Sub(tx.lastActive) >= tx.opts.Timeout {
			idle = append(idle, tx)
		}
	}
	for id, f := range t.finished {
		if now.Sub(f.at) >= t.keepFinished {
			delete(t.finished, id)
		}
	}
	t.forgetLocked()
	t.mu.Unlock()
	for _, tx := range idle {
		t.end(tx, StateTimedOut)
	}
	return len(idle)
}

// Stats are counters for a host's metrics.
type Stats struct {
	Open            int   // open transactions
	ReceiversActive int   // receivers started and not yet confirmed, over open transactions
	BytesServed     int64 // item bytes handed out by Serve (or granted by GrantServe) since the table was made
	Serves          int64 // successful Serve (and GrantServe) calls since the table was made
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{Open: len(t.open), BytesServed: t.served, Serves: t.serves}
	for _, tx := range t.open {
		for _, r := range tx.receivers {
			if r.status.State == ReceiverStarted {
				s.ReceiversActive++
			}
		}
	}
	return s
}

// end moves tx to a final state; StateTimedOut becomes StateQuorumMet when
// the quorum confirmed.
func (t *Table) end(tx *Transaction, state State) {
	t.mu.Lock()
	if tx.state != StateOpen {
		t.mu.Unlock()
		return
	}
	confirmed := 0
	for _, r := range tx.receivers {
		switch r.status.State {
		case ReceiverConfirmed:
			confirmed++
		case ReceiverStarted:
			r.status.State = ReceiverFailed
		}
	}
	quorum := tx.opts.Quorum
	if quorum == 0 && tx.opts.Receivers == 0 {
		quorum = 1
	}
	if state == StateTimedOut && quorum > 0 && confirmed >= quorum {
		state = StateQuorumMet
	}
	tx.state = state
	tx.outcome = Outcome{State: state, Receivers: tx.statusLocked()}
	id := tx.batch.Ref.RefID
	delete(t.open, id)
	t.seq++
	t.finished[id] = finishedRef{state: state, at: t.clock(), seq: t.seq}
	t.order = append(t.order, finishedID{id, t.seq})
	t.forgetLocked()
	finalize := tx.inflight == 0
	t.mu.Unlock()
	if finalize {
		tx.finalize()
	}
}

// forgetLocked forgets the oldest finished refs beyond maxFinished, and
// drops the entries of order that Sweep left stale at its front.
func (t *Table) forgetLocked() {
	for len(t.order) > 0 {
		e := t.order[0]
		f, ok := t.finished[e.id]
		live := ok && f.seq == e.seq
		if live && len(t.finished) <= t.maxFinished {
			return
		}
		if live {
			delete(t.finished, e.id)
		}
		t.order[0] = finishedID{}
		t.order = t.order[1:]
	}
}

// finalize releases the item views and reports the outcome, once the
// transaction has ended and its last serve is done.
func (tx *Transaction) finalize() {
	tx.table.mu.Lock()
	if tx.finalized {
		tx.table.mu.Unlock()
		return
	}
	tx.finalized = true
	tx.batch = &Batch{Ref: tx.batch.Ref} // drop the views of the caller's memory
	tx.table.mu.Unlock()
	close(tx.done)
	if tx.opts.OnDone != nil {
		tx.opts.OnDone(tx.outcome)
	}
}

// lookupError explains why refID has no open transaction. Call without t.mu.
func (t *Table) lookupError(refID uuid.UUID) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lookupErrorLocked(refID)
}

func (t *Table) lookupErrorLocked(refID uuid.UUID) error {
	if f, ok := t.finished[refID]; ok {
		return errorf(KindExpired, "ref %s is finished (%s)", refID, f.state)
	}
	return errorf(KindUnknownRef, "ref %s is expired or unknown", refID)
}

// lookup finds the open transaction of refID, checks the token and that
// receiverID may use it, and returns the receiver's record (nil for one not
// seen yet). It changes nothing: a request changes the table only once it
// has been found authorized and valid (touch). Call with t.mu held.
func (t *Table) lookup(refID uuid.UUID, token []byte, receiverID string) (*Transaction, *receiver, error) {
	tx := t.open[refID]
	if tx == nil {
		return nil, nil, t.lookupErrorLocked(refID)
	}
	if !tx.batch.Ref.TokenEqual(token) {
		return nil, nil, errorf(KindAuth, "wrong token for ref %s", refID)
	}
	if receiverID == "" {
		return nil, nil, errorf(KindInvalid, "missing receiver id")
	}
	r := tx.receivers[receiverID]
	switch {
	case r != nil:
	case tx.names != nil && !tx.names[receiverID]:
		return nil, nil, errorf(KindAuth, "ref %s does not name this receiver", refID)
	case len(tx.receivers) >= tx.opts.MaxReceivers:
		return nil, nil, errorf(KindLimit, "ref %s already has %d receivers, its MaxReceivers", refID, tx.opts.MaxReceivers)
	}
	return tx, r, nil
}

// touch records a granted request of receiverID (r as lookup returned it):
// the receiver, the time it was last seen and the transaction's activity.
// Call with t.mu held.
func (t *Table) touch(tx *Transaction, r *receiver, receiverID string) *receiver {
	now := t.clock()
	tx.lastActive = now
	if r == nil {
		r = &receiver{status: ReceiverStatus{ID: receiverID, State: ReceiverStarted, FirstSeen: now}}
		tx.receivers[receiverID] = r
		tx.order = append(tx.order, receiverID)
	}
	r.status.LastSeen = now
	return r
}

// Manifest returns the manifest of refID for receiver, and the nonce its
// receipt must carry. Every nonce a receiver was given stays good for the
// transaction's life: none is ever pushed out by later manifests. A batch
// with items held elsewhere (Item.Extern) has its manifest there: ask
// GrantManifest.
func (t *Table) Manifest(refID uuid.UUID, token []byte, receiverID string) (*Manifest, string, error) {
	t.mu.Lock()
	tx, nonce, err := t.grantManifest(refID, token, receiverID, true)
	if err != nil {
		t.mu.Unlock()
		return nil, "", err
	}
	b := tx.batch
	t.mu.Unlock()
	return b.Manifest(), nonce, nil
}

// GrantManifest is Manifest for whoever holds the batch's bytes elsewhere
// (a wasm guest's host, for items of Extern arrays): it checks and records
// the request as Manifest does and returns the nonce, and leaves the
// manifest to the holder, who computes it from the bytes.
func (t *Table) GrantManifest(refID uuid.UUID, token []byte, receiverID string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, nonce, err := t.grantManifest(refID, token, receiverID, false)
	return nonce, err
}

// grantManifest checks a manifest request, mints its nonce and records
// it. With here, the batch's items must be in this process's memory.
// Call with t.mu held.
func (t *Table) grantManifest(refID uuid.UUID, token []byte, receiverID string, here bool) (*Transaction, string, error) {
	tx, r, err := t.lookup(refID, token, receiverID)
	if err != nil {
		return nil, "", err
	}
	if here && tx.batch.heldElsewhere() {
		return nil, "", errorf(KindInvalid, "ref %s holds arrays held elsewhere: their holder computes the manifest (GrantManifest)", refID)
	}
	// Under t.mu: the random source need not be safe for concurrent use.
	nonce, err := mintNonce(t.rand, tx.key, receiverID)
	if err != nil {
		return nil, "", err
	}
	t.touch(tx, r, receiverID)
	return tx, nonce, nil
}

// releaseServe ends one in-flight use of tx's items and finalizes tx if it
// has ended and that was the last.
func (t *Table) releaseServe(tx *Transaction) {
	t.mu.Lock()
	tx.inflight--
	last := tx.inflight == 0 && tx.state != StateOpen
	t.mu.Unlock()
	if last {
		tx.finalize()
	}
}

// Serve returns bytes [off, off+n) of item itemID of refID, as a view of
// the source's memory. The caller must call release when it has written
// them; until then the transaction does not report its end. A range outside
// the item is KindInvalid. An item held elsewhere (Item.Extern) is served
// by its holder: ask GrantServe.
func (t *Table) Serve(refID uuid.UUID, token []byte, receiverID string, itemID int, off, n int64) (data []byte, release func(), err error) {
	return t.ServeVia(refID, token, receiverID, "", itemID, off, n)
}

// ServeVia is Serve for a range that hop fetches for receiverID: a
// caching relay or holder that serves the receivers behind it from what
// it fetched (hop "" is none). The whole pieces of the range count as
// served to the receiver and to the hop (see Confirm). A transaction
// records at most MaxReceivers hops (KindLimit beyond); a hop must be a
// valid receiver id, and need not be named.
func (t *Table) ServeVia(refID uuid.UUID, token []byte, receiverID, hop string, itemID int, off, n int64) (data []byte, release func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, item, err := t.grantServe(refID, token, receiverID, hop, itemID, off, n, true)
	if err != nil {
		return nil, nil, err
	}
	tx.inflight++
	var once sync.Once
	release = func() { once.Do(func() { t.releaseServe(tx) }) }
	return item.Data[off : off+n], release, nil
}

// PieceSums returns the checksums of refID's pieces known so far, for a
// server that writes what ServeVia granted: it sets each it computes, and
// sends those known with their pieces. It is nil when refID is not open
// or token is not its token.
func (t *Table) PieceSums(refID uuid.UUID, token []byte) *PieceSums {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx := t.open[refID]
	if tx == nil || !tx.batch.Ref.TokenEqual(token) {
		return nil
	}
	return tx.sumsLocked()
}

// sumsLocked returns tx's PieceSums, made at the first call. Call with
// table.mu held.
func (tx *Transaction) sumsLocked() *PieceSums {
	if tx.sums == nil {
		tx.sums = NewPieceSums(tx.grid)
	}
	return tx.sums
}

// SumPieces computes the sums (Checksum) of tx's pieces that are not
// known yet (Table.PieceSums), item by item, until every one is known, the
// transaction ends or stop is closed. A server that sends a piece whose
// sum is known sends both in one write and checksums nothing, so a host
// calls it ahead of the receivers, with CPU time nothing else wants
// (hostdl.Host.Publish). Each piece is read as a serve reads it: the
// transaction does not report its end while one is being summed. Items
// held elsewhere (Item.Extern) are skipped.
func (tx *Transaction) SumPieces(stop <-chan struct{}) {
	t := tx.table
	t.mu.Lock()
	sums, items := tx.sumsLocked(), tx.batch.Items
	t.mu.Unlock()
	for i := range items {
		it := &items[i]
		if it.Extern != nil {
			continue
		}
		for off := 0; off < len(it.Data); off += DefaultBlockSize {
			k := int64(off / DefaultBlockSize)
			if _, ok := sums.Get(it.ID, k); ok {
				continue
			}
			select {
			case <-stop:
				return
			default:
			}
			t.mu.Lock()
			open := tx.state == StateOpen
			if open {
				tx.inflight++
			}
			t.mu.Unlock()
			if !open {
				return
			}
			sums.Set(it.ID, k, Checksum(it.Data[off:min(off+DefaultBlockSize, len(it.Data))]))
			t.releaseServe(tx)
		}
	}
}

// GrantServe is ServeVia for whoever holds the item's bytes elsewhere (a
// wasm guest's host, for an Extern array): it checks and records the
// request as ServeVia does, bytes and pieces served included, and leaves
// the bytes to the holder. The holder keeps its own count of the serves in
// progress: the transaction's end does not wait for them.
func (t *Table) GrantServe(refID uuid.UUID, token []byte, receiverID, hop string, itemID int, off, n int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _, err := t.grantServe(refID, token, receiverID, hop, itemID, off, n, false)
	return err
}

// grantServe checks a request for a range of an item and records it. With
// here, the item must be in this process's memory. Call with t.mu held.
func (t *Table) grantServe(refID uuid.UUID, token []byte, receiverID, hop string, itemID int, off, n int64, here bool) (*Transaction, *Item, error) {
	tx, r, err := t.lookup(refID, token, receiverID)
	if err != nil {
		return nil, nil, err
	}
	h, err := tx.hop(hop)
	if err != nil {
		return nil, nil, err
	}
	if itemID < 0 || itemID >= len(tx.batch.Items) {
		return nil, nil, errorf(KindUnknownRef, "ref %s has no item %d", refID, itemID)
	}
	item := &tx.batch.Items[itemID]
	if here && item.Extern != nil {
		return nil, nil, errorf(KindInvalid, "item %d of ref %s is held elsewhere: its holder serves it (GrantServe)", itemID, refID)
	}
	size := item.Size()
	if off < 0 || n < 0 || off > size || n > size-off {
		return nil, nil, errorf(KindInvalid, "range %d+%d is outside item %d of %d bytes", off, n, itemID, size)
	}
	r = t.touch(tx, r, receiverID)
	r.status.Bytes += n
	tx.grid.Mark(&r.served, itemID, off, n)
	if hop != "" {
		if h == nil {
			h = &Served{}
			if tx.hops == nil {
				tx.hops = map[string]*Served{}
			}
			tx.hops[hop] = h
		}
		tx.grid.Mark(h, itemID, off, n)
	}
	t.served += n
	t.serves++
	return tx, item, nil
}

// hop returns the record of hop (nil for none, or one not seen yet), or
// why tx refuses it. Call with t.mu held.
func (tx *Transaction) hop(hop string) (*Served, error) {
	if hop == "" {
		return nil, nil
	}
	if !ValidReceiverID(hop) {
		return nil, errorf(KindInvalid, "hop id %q is not 1 to %d printable ASCII characters", hop, MaxReceiverIDLen)
	}
	h := tx.hops[hop]
	if h == nil && len(tx.hops) >= tx.opts.MaxReceivers {
		return nil, errorf(KindLimit, "ref %s already has %d hops, its MaxReceivers", tx.batch.Ref.RefID, tx.opts.MaxReceivers)
	}
	return h, nil
}

// Confirm records receiver's receipt for refID. The nonce must be one that
// a manifest of refID gave this receiver, and every piece of the batch
// must have been served to this receiver (in ranges of whole pieces, in
// any number of requests): a receipt before is KindAuth and changes
// nothing. When the expected receivers have all confirmed, the
// transaction ends with StateCompleted.
func (t *Table) Confirm(refID uuid.UUID, token []byte, receiverID, nonce string) error {
	return t.ConfirmVia(refID, token, receiverID, "", nonce)
}

// ConfirmVia is Confirm for a receipt that hop forwards (hop "" is none):
// it is accepted when every piece was served to the receiver, or to the
// hop (ServeVia), which then holds them for the receivers behind it.
func (t *Table) ConfirmVia(refID uuid.UUID, token []byte, receiverID, hop, nonce string) error {
	t.mu.Lock()
	tx, r, err := t.lookup(refID, token, receiverID)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	if !nonceValid(tx.key, receiverID, nonce) {
		t.mu.Unlock()
		return errorf(KindAuth, "receipt for ref %s has the wrong nonce", refID)
	}
	if !tx.unseen && (r == nil || !tx.grid.All(&r.served)) && (hop == "" || tx.hops[hop] == nil || !tx.grid.All(tx.hops[hop])) {
		t.mu.Unlock()
		if hop != "" {
			return errorf(KindAuth, "receipt for ref %s before every piece was served to receiver %q or to hop %q", refID, receiverID, hop)
		}
		return errorf(KindAuth, "receipt for ref %s before every piece was served to receiver %q", refID, receiverID)
	}
	r = t.touch(tx, r, receiverID)
	r.status.State = ReceiverConfirmed
	confirmed := 0
	for _, x := range tx.receivers {
		if x.status.State == ReceiverConfirmed {
			confirmed++
		}
	}
	complete := tx.opts.Receivers > 0 && confirmed >= tx.opts.Receivers
	t.mu.Unlock()
	if complete {
		t.end(tx, StateCompleted)
	}
	return nil
}
