package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/wasm/internal/layout"
)

// tableCallTimeout bounds one call into a table's guest: a call that runs
// longer (a guest gone wrong) loses the table, rather than holding every
// request to it.
const tableCallTimeout = 10 * time.Second

// Table is a transaction table that lives in a guest: core.Table's
// bookkeeping (tokens, named receivers, MaxReceivers, nonces, deadlines,
// outcomes) runs in a guest instance of its own, and the batches' bytes
// stay in the host. It has core.Table's API and contracts, and it is what
// hostdl's server serves (hostdl.Table), so that a hostdl.Host serves
// the batches published in the guest:
//
//	var table *wasm.Table
//	host, err := hostdl.NewHost(hostdl.HostOptions{
//		NewTable: func(o core.TableOptions) (hostdl.Table, error) {
//			t, err := rt.NewTable(o)
//			table = t
//			return t, err
//		},
//	})
//	enc, err := rt.EncMode(core.EncOptions{ByRef: true, Source: host.Source()})
//	msg, err := enc.Encode(model)               // the batch's items view model's arrays
//	tx, err := table.Publish(msg.Batch(), core.PublishOptions{Receivers: 2})
//
// The guest checks every request (token, receiver, range, nonce) and
// keeps the books; the host describes each batch in its manifest and
// writes the ranges the guest granted from its own memory.
// Every call tells the host which transactions ended, so that Wait, Done,
// Outcome and OnDone complete in the host.
//
// The guest runs one call at a time: the table's calls are serialized,
// each a few microseconds. If the guest fails (a trap, a panic, running
// out of memory, a call beyond 10 s) or the Runtime closes, the table is
// lost: its open transactions end with StateDeleted and no receivers, and
// every later call fails with KindAborted. After Close too, calls fail
// with KindAborted, where a core.Table would go on.
//
// A Table is safe for concurrent use.
type Table struct {
	rt    *Runtime
	clock func() time.Time
	rand  io.Reader

	mu     sync.Mutex // one call in the guest at a time; guards what follows
	in     *instance  // nil once the table is lost or closed
	handle int64      // the guest's table
	req    uint32     // the guest's request buffer (pinned), and its size
	reqCap uint32
	buf    []byte                     // the request layout being written
	lost   error                      // why calls fail, once in is nil
	txs    map[uuid.UUID]*Transaction // open, or ended with serves in progress
	fins   []*Transaction             // ended and idle: to finalize once mu is released
}

// Transaction is one batch published in a guest's Table: core.Transaction's
// API, its outcome reported by the guest.
type Transaction struct {
	table  *Table
	ref    core.BatchRef
	onDone func(core.Outcome)
	done   chan struct{}

	// Guarded by table.mu.
	batch     *core.Batch     // the items, viewing the host's memory; nil once finalized
	sums      *core.PieceSums // made at the first PieceSums
	ended     bool
	outcome   core.Outcome
	inflight  int // serves reading the items
	finalized bool
}

// finishedCost is the guest memory a table allows for each finished ref it
// remembers: the default MaxFinished of a table in a guest is its memory
// limit over this (16,384 in 16 MiB, 65,536 from 64 MiB), well within
// what its heap holds beside the open transactions.
const finishedCost = 1 << 10

// NewTable starts a table in a guest instance of its own, with o's clock,
// randomness, KeepFinished and MaxFinished (as core.NewTable; MaxFinished
// defaults to the memory limit over 1 KiB, at most
// core.DefaultMaxFinished). Close it when done; the
// Runtime's Close closes it too.
func (r *Runtime) NewTable(o core.TableOptions) (*Table, error) {
	t := &Table{rt: r, clock: o.Clock, rand: o.Rand, txs: map[uuid.UUID]*Transaction{}}
	if t.clock == nil {
		t.clock = time.Now
	}
	if t.rand == nil {
		t.rand = rand.Reader
	}
	if o.KeepFinished < 0 {
		return nil, core.NewError(core.KindInvalid, nil, "wasm: TableOptions.KeepFinished %v is negative", o.KeepFinished)
	}
	switch {
	case o.MaxFinished < 0:
		return nil, core.NewError(core.KindInvalid, nil, "wasm: TableOptions.MaxFinished %d is negative", o.MaxFinished)
	case o.MaxFinished == 0:
		o.MaxFinished = min(core.DefaultMaxFinished, int(r.limit/finishedCost))
	}
	if err := r.addTable(t); err != nil {
		return nil, err
	}
	in, err := newInstance(r.life, r.eng, r.limit)
	if err != nil {
		r.removeTable(t)
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.in = in
	a, err := t.call("vc_table_new", uint64(o.KeepFinished), uint64(o.MaxFinished))
	if err == nil {
		t.handle = a.Values[0]
		var p []byte
		if t.req, p, err = t.in.alloc(context.Background(), 256); err == nil {
			t.reqCap = uint32(len(p))
		}
	}
	if err != nil {
		t.loseLocked(err)
		r.removeTable(t)
		return nil, err
	}
	return t, nil
}

// call calls the table export name with args and reads its answer; the
// transactions it reports ended are ended in the host. A failure of the
// guest, or an answer the host cannot read, loses the table. Call with
// t.mu held.
func (t *Table) call(name string, args ...uint64) (*layout.TableAnswer, error) {
	if t.in == nil {
		return nil, t.lost
	}
	in := t.in
	if in.broken {
		err := core.NewError(core.KindAborted, nil, "wasm: the table's guest failed")
		t.loseLocked(err)
		return nil, t.lost
	}
	if err := t.rt.enter(); err != nil {
		t.loseLocked(err)
		return nil, t.lost
	}
	defer t.rt.calls.Exit()
	ctx, cancel := context.WithTimeout(t.rt.life, tableCallTimeout)
	defer cancel()
	r, err := in.call(withRand(ctx, t.rand), name, args...)
	var a *layout.TableAnswer
	if err == nil {
		var b []byte
		if _, b, err = in.result(ctx, r); err == nil {
			if a, err = layout.ReadTableAnswer(b); err != nil {
				in.broken = true // it answered what no guest of this host writes
			}
		}
	}
	if in.broken {
		if t.rt.life.Err() != nil {
			err = core.NewError(core.KindAborted, err, "wasm: the runtime was closed")
		}
		t.loseLocked(err)
		return nil, t.lost
	}
	if err != nil {
		return nil, err
	}
	t.endedLocked(a.Ended)
	return a, nil
}

// request calls the table export name with q's layout.
func (t *Table) request(name string, q *layout.TableRequest) (*layout.TableAnswer, error) {
	if t.in == nil {
		return nil, t.lost
	}
	t.buf = layout.AppendTableRequest(t.buf[:0], q)
	p, err := t.put(t.buf)
	if err != nil {
		return nil, err
	}
	return t.call(name, uint64(t.handle), uint64(p), uint64(len(t.buf)), uint64(t.clock().UnixNano()))
}

// put copies b into the guest's request buffer, growing it as needed, and
// returns its address. Call with t.mu held.
func (t *Table) put(b []byte) (uint32, error) {
	ctx := context.Background()
	if uint64(len(b)) > uint64(t.reqCap) {
		n := max(uint64(len(b)), 2*uint64(t.reqCap))
		if err := t.in.free(ctx, t.req); err != nil {
			t.loseLocked(err)
			return 0, err
		}
		p, _, err := t.in.alloc(ctx, n)
		if err != nil {
			t.loseLocked(err)
			return 0, err
		}
		t.req, t.reqCap = p, uint32(n)
	}
	if !t.in.mod.Memory().Write(t.req, b) {
		err := core.NewError(core.KindInvalid, nil, "wasm: the table's request buffer is outside the guest's memory")
		t.loseLocked(err)
		return 0, err
	}
	return t.req, nil
}

// endedLocked ends the transactions the guest reported ended; those
// whose items nothing reads any more are finalized once mu is released.
func (t *Table) endedLocked(ended []layout.TxOutcome) {
	for _, e := range ended {
		tx := t.txs[e.RefID]
		if tx == nil || tx.ended {
			continue
		}
		tx.ended, tx.outcome = true, e.Outcome
		if tx.inflight == 0 {
			t.fins = append(t.fins, tx)
		}
	}
}

// loseLocked gives the table up after err: the guest is closed, and the
// open transactions end with StateDeleted.
func (t *Table) loseLocked(err error) {
	if t.in != nil {
		t.in.close()
		t.in = nil
	}
	if t.lost == nil {
		t.lost = core.NewError(core.KindAborted, err, "wasm: the table is lost")
	}
	t.rt.removeTable(t)
	for _, tx := range t.txs {
		if !tx.ended {
			tx.ended, tx.outcome = true, core.Outcome{State: core.StateDeleted}
			if tx.inflight == 0 {
				t.fins = append(t.fins, tx)
			}
		}
	}
}

// unlock releases mu, then finalizes the transactions that ended idle:
// their Done closes and their OnDone runs, outside the lock, as core's do.
func (t *Table) unlock() {
	fins := t.fins
	t.fins = nil
	for _, tx := range fins {
		tx.finalized = true
		tx.batch = nil // drop the views of the caller's memory
		delete(t.txs, tx.ref.RefID)
	}
	t.mu.Unlock()
	for _, tx := range fins {
		close(tx.done)
		if tx.onDone != nil {
			tx.onDone(tx.outcome)
		}
	}
}

// Publish opens a transaction for b in the guest: from now until it ends,
// the table grants b's items to whoever holds its token, and the host
// serves them from b's memory. Item i must have id i and Data of its
// dtype and shape (as an encode makes them). o is core's, with core's
// checks and defaults; OnDone runs in the host, and Snapshot copies the
// items here.
func (t *Table) Publish(b *core.Batch, o core.PublishOptions) (*Transaction, error) {
	if b == nil {
		return nil, core.NewError(core.KindInvalid, nil, "wasm: Publish needs a batch")
	}
	for i := range b.Items {
		it := &b.Items[i]
		n, err := core.ByteLen(it.DType, it.Shape)
		if it.ID != i || it.Extern != nil || err != nil || it.Order > core.ColumnMajor || n != int64(len(it.Data)) {
			return nil, core.NewError(core.KindMismatch, nil, "wasm: item %d of batch %s is not id %d with the bytes of its %s %v", i, b.Ref.RefID, i, it.DType, it.Shape)
		}
	}
	if o.Snapshot {
		c := &core.Batch{Ref: b.Ref, Items: slices.Clone(b.Items)}
		for i := range c.Items {
			c.Items[i].Data = slices.Clone(c.Items[i].Data)
		}
		b = c
	}
	t.mu.Lock()
	defer t.unlock()
	if t.in == nil {
		return nil, t.lost
	}
	t.buf = layout.AppendPublish(t.buf[:0], b, &o)
	p, err := t.put(t.buf)
	if err != nil {
		return nil, err
	}
	if _, err := t.call("vc_table_publish", uint64(t.handle), uint64(p), uint64(len(t.buf)), uint64(t.clock().UnixNano())); err != nil {
		return nil, err
	}
	tx := &Transaction{table: t, ref: b.Ref, onDone: o.OnDone, done: make(chan struct{}), batch: b}
	t.txs[b.Ref.RefID] = tx
	return tx, nil
}

// PieceSums returns the checksums of refID's pieces known so far
// (core.Table.PieceSums): the host keeps them beside the batch, until the
// transaction ends.
func (t *Table) PieceSums(refID uuid.UUID, token []byte) *core.PieceSums {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx := t.txs[refID]
	if tx == nil || tx.ended || tx.batch == nil || !tx.ref.TokenEqual(token) {
		return nil
	}
	if tx.sums == nil {
		tx.sums = core.NewPieceSums(tx.batch.Manifest().PieceGrid())
	}
	return tx.sums
}

// Manifest returns the manifest of refID for receiver and the nonce its
// receipt must carry (core.Table.Manifest): the guest grants the request,
// the host describes the batch it holds (no item byte is read: each
// piece's checksum is computed as hostdl sends it).
func (t *Table) Manifest(refID uuid.UUID, token []byte, receiver string) (*core.Manifest, string, error) {
	t.mu.Lock()
	a, err := t.request("vc_table_manifest", &layout.TableRequest{RefID: refID, Token: token, Receiver: receiver})
	var b *core.Batch
	if err == nil {
		var tx *Transaction
		if tx, err = t.grantedLocked(refID); err == nil {
			b = tx.batch
		}
	}
	t.unlock()
	if err != nil {
		return nil, "", err
	}
	return b.Manifest(), a.Text, nil
}

// grantedLocked returns the open transaction of refID that the guest just
// granted a request of.
func (t *Table) grantedLocked(refID uuid.UUID) (*Transaction, error) {
	tx := t.txs[refID]
	if tx == nil || tx.ended {
		err := core.NewError(core.KindInvalid, nil, "wasm: the guest granted a request for %s, which the host does not serve", refID)
		t.loseLocked(err)
		return nil, err
	}
	return tx, nil
}

// release ends one read of tx's items.
func (t *Table) release(tx *Transaction) {
	t.mu.Lock()
	tx.inflight--
	if tx.inflight == 0 && tx.ended && !tx.finalized {
		t.fins = append(t.fins, tx)
	}
	t.unlock()
}

// Serve returns bytes [off, off+n) of item item of refID as a view of the
// host's memory (core.Table.Serve): the guest grants and records the
// request. The caller must call release when it has written them; until
// then the transaction does not report its end.
func (t *Table) Serve(refID uuid.UUID, token []byte, receiver string, item int, off, n int64) ([]byte, func(), error) {
	return t.ServeVia(refID, token, receiver, "", item, off, n)
}

// ServeVia is Serve for a range that hop fetches for receiver
// (core.Table.ServeVia).
func (t *Table) ServeVia(refID uuid.UUID, token []byte, receiver, hop string, item int, off, n int64) ([]byte, func(), error) {
	t.mu.Lock()
	_, err := t.request("vc_table_serve", &layout.TableRequest{RefID: refID, Token: token, Receiver: receiver, Hop: hop, Item: int64(item), Off: off, N: n})
	var data []byte
	var tx *Transaction
	if err == nil {
		if tx, err = t.grantedLocked(refID); err == nil {
			if item < 0 || item >= len(tx.batch.Items) || off < 0 || n < 0 || off > int64(len(tx.batch.Items[item].Data)) || n > int64(len(tx.batch.Items[item].Data))-off {
				err = core.NewError(core.KindInvalid, nil, "wasm: the guest granted range %d+%d of item %d of %s, which the host does not hold", off, n, item, refID)
				t.loseLocked(err)
			} else {
				data = tx.batch.Items[item].Data[off : off+n]
				tx.inflight++
			}
		}
	}
	t.unlock()
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return data, func() { once.Do(func() { t.release(tx) }) }, nil
}

// Confirm records receiver's receipt for refID (core.Table.Confirm).
func (t *Table) Confirm(refID uuid.UUID, token []byte, receiver, nonce string) error {
	return t.ConfirmVia(refID, token, receiver, "", nonce)
}

// ConfirmVia records a receipt that hop forwards (core.Table.ConfirmVia).
func (t *Table) ConfirmVia(refID uuid.UUID, token []byte, receiver, hop, nonce string) error {
	t.mu.Lock()
	defer t.unlock()
	_, err := t.request("vc_table_confirm", &layout.TableRequest{RefID: refID, Token: token, Receiver: receiver, Hop: hop, Nonce: nonce})
	return err
}

// Sweep ends the transactions idle for their timeout at now and forgets
// finished ones older than KeepFinished (core.Table.Sweep); a lost table
// sweeps nothing.
func (t *Table) Sweep(now time.Time) int {
	t.mu.Lock()
	defer t.unlock()
	if t.in == nil {
		return 0
	}
	a, err := t.call("vc_table_sweep", uint64(t.handle), uint64(t.clock().UnixNano()), uint64(now.UnixNano()))
	if err != nil {
		return 0
	}
	return int(a.Values[0])
}

// Stats returns the table's counters (core.Table.Stats); a lost table's
// are zero.
func (t *Table) Stats() core.Stats {
	t.mu.Lock()
	defer t.unlock()
	if t.in == nil {
		return core.Stats{}
	}
	a, err := t.call("vc_table_stats", uint64(t.handle), uint64(t.clock().UnixNano()))
	if err != nil {
		return core.Stats{}
	}
	return core.Stats{Open: int(a.Values[0]), ReceiversActive: int(a.Values[1]), BytesServed: a.Values[2], Serves: a.Values[3]}
}

// Delete ends the transaction of refID with StateDeleted (core.Table.Delete).
func (t *Table) Delete(refID uuid.UUID) error {
	t.mu.Lock()
	defer t.unlock()
	_, err := t.request("vc_table_delete", &layout.TableRequest{RefID: refID})
	return err
}

// Close ends every open transaction with StateDeleted and closes the
// table's guest; later calls fail with KindAborted. Closing again does
// nothing.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.unlock()
	if t.in == nil {
		return
	}
	t.call("vc_table_close", uint64(t.handle), uint64(t.clock().UnixNano()))
	t.closeLocked()
}

// closeLocked closes the guest of a table whose transactions have ended.
func (t *Table) closeLocked() {
	if t.lost == nil {
		t.lost = core.NewError(core.KindAborted, nil, "wasm: the table is closed")
	}
	t.loseLocked(t.lost)
}

// Ref returns the transaction's batch descriptor.
func (tx *Transaction) Ref() core.BatchRef { return tx.ref }

// Done is closed when the transaction has ended and no serve of its bytes
// is still under way.
func (tx *Transaction) Done() <-chan struct{} { return tx.done }

// Outcome returns the outcome, and false while the transaction is open.
func (tx *Transaction) Outcome() (core.Outcome, bool) {
	select {
	case <-tx.done:
		return tx.outcome, true
	default:
		return core.Outcome{}, false
	}
}

// Wait returns the outcome once the transaction has ended, or an error of
// KindTimeout or KindAborted when ctx ends first.
func (tx *Transaction) Wait(ctx context.Context) (core.Outcome, error) {
	select {
	case <-tx.done:
		return tx.outcome, nil
	case <-ctx.Done():
		k := core.KindAborted
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			k = core.KindTimeout
		}
		return core.Outcome{}, core.NewError(k, ctx.Err(), "wasm: waiting for transaction %s", tx.ref.RefID)
	}
}

// Abort ends the transaction with StateAborted, if it is still open.
func (tx *Transaction) Abort() {
	t := tx.table
	t.mu.Lock()
	defer t.unlock()
	if !tx.ended {
		t.request("vc_table_abort", &layout.TableRequest{RefID: tx.ref.RefID})
	}
}

// Status returns the receivers as they are now.
func (tx *Transaction) Status() (core.State, []core.ReceiverStatus) {
	t := tx.table
	t.mu.Lock()
	defer t.unlock()
	if !tx.ended {
		a, err := t.request("vc_table_status", &layout.TableRequest{RefID: tx.ref.RefID})
		if err == nil && a.Status != nil {
			return a.Status.Outcome.State, a.Status.Outcome.Receivers
		}
	}
	return tx.outcome.State, slices.Clone(tx.outcome.Receivers)
}
