package layout

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// The layouts of encoding by reference in a wasm guest and of the guest's
// transaction table, whose array bytes its host keeps: the guest sees
// descriptions, ref ids, tokens and receiver ids, never an array byte.

// ---- Batch descriptors ----

// appendBatchRef appends a batch descriptor:
//
//	u32 source length, u32 holder length, i64 items, i64 bytes, 16 ref id,
//	32 token, source padded to a multiple of 8, holder padded likewise
func appendBatchRef(dst []byte, b core.BatchRef) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, uint32(len(b.Source)))
	dst = le.AppendUint32(dst, uint32(len(b.Holder)))
	dst = le.AppendUint64(dst, uint64(b.Items))
	dst = le.AppendUint64(dst, uint64(b.Bytes))
	dst = append(dst, b.RefID[:]...)
	dst = append(dst, b.Token[:]...)
	dst = appendPadded(dst, b.Source)
	return appendPadded(dst, b.Holder)
}

// appendPadded appends s and zeros up to a multiple of 8 bytes of s.
func appendPadded(dst []byte, s string) []byte {
	dst = append(dst, s...)
	return append(dst, make([]byte, pad8(uint64(len(s)))-uint64(len(s)))...)
}

// batchRefSize is the least size of a batch descriptor.
const batchRefSize = 72

func (r *reader) batchRef() core.BatchRef {
	n, h := int(r.u32()), int(r.u32())
	items, total := r.i64(), r.i64()
	id, token := r.next(16), r.next(32)
	src := r.padded(n)
	holder := r.padded(h)
	if r.err == nil && (items < 0 || items > math.MaxInt32 || total < 0) {
		r.fail()
	}
	if r.err != nil {
		return core.BatchRef{}
	}
	b := core.BatchRef{Source: src, Holder: holder, RefID: uuid.UUID(id), Items: int(items), Bytes: total}
	copy(b.Token[:], token)
	return b
}

// uuid reads a UUID.
func (r *reader) uuid() (id uuid.UUID) {
	copy(id[:], r.next(16))
	return id
}

// padded reads a string of n bytes and its padding.
func (r *reader) padded(n int) string {
	b := r.next(n)
	r.next(int(pad8(uint64(n)) - uint64(n)))
	return string(b)
}

// ---- Encoding by reference ----

// Encoded is a message encoded by reference from held slots: the message
// and, when any array went by reference, its batch, whose items are the
// held slots by index (Handles[i] is item i's slot).
type Encoded struct {
	Message []byte
	Batch   *core.BatchRef
	Handles []int64
}

// AppendEncoded appends the layout of m, whose batch's items must all be
// held slots (core.Extern):
//
//	u64 message length, u32 item count, u32 1 with a batch (else 0)
//	message, padded to a multiple of 8
//	the batch descriptor, if any
//	per item: i64 its slot (the Extern's handle)
func AppendEncoded(dst []byte, m *core.Message) ([]byte, error) {
	b := m.Batch()
	var items []core.Item
	if b != nil {
		items = b.Items
	}
	for i := range items {
		if items[i].Extern == nil {
			return nil, abi.Errorf(core.KindInvalid, "item %d of the batch is an array in this memory, not a held slot: hold every array of RefThreshold bytes or more", i)
		}
	}
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, uint64(m.Len()))
	dst = le.AppendUint32(dst, uint32(len(items)))
	dst = le.AppendUint32(dst, uint32(b2u8(b != nil)))
	start := len(dst)
	dst = m.AppendTo(dst)
	dst = append(dst, make([]byte, pad8(uint64(len(dst)-start))-uint64(len(dst)-start))...)
	if b != nil {
		dst = appendBatchRef(dst, b.Ref)
	}
	for _, it := range items {
		dst = le.AppendUint64(dst, uint64(it.Extern.Handle))
	}
	return dst, nil
}

// ReadEncoded reads an encoded layout; Message views b.
func ReadEncoded(b []byte) (*Encoded, error) {
	r := reader{b: b, what: "encoded"}
	n := r.u64()
	items := r.count(8)
	hasBatch := r.u32()
	if r.err == nil && (n > uint64(len(b)) || hasBatch > 1 || (hasBatch == 0 && items != 0)) {
		r.fail()
	}
	e := &Encoded{Message: r.next(int(n))}
	r.next(int(pad8(n) - n))
	if hasBatch == 1 {
		br := r.batchRef()
		e.Batch = &br
	}
	for range items {
		e.Handles = append(e.Handles, r.i64())
	}
	if r.err == nil && r.off != len(b) {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	return e, nil
}

// ---- Table requests ----

// TableRequest is a request to a guest's table: a manifest, a range, a
// receipt (RefID, Token, Receiver and, as they apply, Hop, Item, Off, N
// and Nonce), or a transaction's status, abort or deletion (RefID).
type TableRequest struct {
	RefID    uuid.UUID
	Token    []byte
	Receiver string
	Hop      string // the relay or holder that forwards a range or receipt, or ""
	Nonce    string
	Item     int64
	Off, N   int64
}

// AppendTableRequest appends q's layout:
//
//	16 ref id, u32 token length, u32 receiver length, u32 nonce length,
//	u32 hop length, i64 item, i64 offset, i64 length, token, receiver,
//	nonce, hop
func AppendTableRequest(dst []byte, q *TableRequest) []byte {
	le := binary.LittleEndian
	dst = append(dst, q.RefID[:]...)
	dst = le.AppendUint32(dst, uint32(len(q.Token)))
	dst = le.AppendUint32(dst, uint32(len(q.Receiver)))
	dst = le.AppendUint32(dst, uint32(len(q.Nonce)))
	dst = le.AppendUint32(dst, uint32(len(q.Hop)))
	dst = le.AppendUint64(dst, uint64(q.Item))
	dst = le.AppendUint64(dst, uint64(q.Off))
	dst = le.AppendUint64(dst, uint64(q.N))
	dst = append(dst, q.Token...)
	dst = append(dst, q.Receiver...)
	dst = append(dst, q.Nonce...)
	return append(dst, q.Hop...)
}

// ReadTableRequest reads a table request; Token views b.
func ReadTableRequest(b []byte) (*TableRequest, error) {
	r := reader{b: b, what: "table request"}
	q := &TableRequest{RefID: r.uuid()}
	nt, nr, nn, nh := int(r.u32()), int(r.u32()), int(r.u32()), int(r.u32())
	q.Item, q.Off, q.N = r.i64(), r.i64(), r.i64()
	q.Token = r.next(nt)
	q.Receiver = string(r.next(nr))
	q.Nonce = string(r.next(nn))
	q.Hop = string(r.next(nh))
	if r.err == nil && r.off != len(b) {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	return q, nil
}

// ---- Publishing ----

// AppendPublish appends the layout of publishing b under o in a guest's
// table, which records b's items by description alone:
//
//	the batch descriptor
//	u32 item count, u32 name count, i64 receivers, i64 max receivers,
//	i64 quorum, i64 timeout ns
//	per item: u8 dtype, u8 order, u16 0, u32 ndim, ndim × i64
//	per name: u32 length, u32 0, the name padded to a multiple of 8
//
// Item i is the item of id i. OnDone and Snapshot stay with the caller.
func AppendPublish(dst []byte, b *core.Batch, o *core.PublishOptions) []byte {
	le := binary.LittleEndian
	dst = appendBatchRef(dst, b.Ref)
	dst = le.AppendUint32(dst, uint32(len(b.Items)))
	dst = le.AppendUint32(dst, uint32(len(o.Names)))
	dst = le.AppendUint64(dst, uint64(o.Receivers))
	dst = le.AppendUint64(dst, uint64(o.MaxReceivers))
	dst = le.AppendUint64(dst, uint64(o.Quorum))
	dst = le.AppendUint64(dst, uint64(o.Timeout))
	for _, it := range b.Items {
		dst = append(dst, uint8(it.DType), uint8(it.Order), 0, 0)
		dst = le.AppendUint32(dst, uint32(len(it.Shape)))
		for _, d := range it.Shape {
			dst = le.AppendUint64(dst, uint64(d))
		}
	}
	for _, n := range o.Names {
		dst = le.AppendUint32(dst, uint32(len(n)))
		dst = le.AppendUint32(dst, 0)
		dst = appendPadded(dst, n)
	}
	return dst
}

// ReadPublish reads a publish layout: a batch whose items are Externs
// (Handle: the item's index), and the options.
func ReadPublish(b []byte) (*core.Batch, core.PublishOptions, error) {
	r := reader{b: b, what: "publish"}
	var o core.PublishOptions
	batch := &core.Batch{Ref: r.batchRef()}
	nitems := r.count(8)
	nnames := r.count(8)
	o.Receivers, o.MaxReceivers, o.Quorum = r.int(), r.int(), r.int()
	o.Timeout = time.Duration(r.i64())
	if r.err != nil {
		return nil, o, r.err
	}
	batch.Items = make([]core.Item, nitems)
	for i := range batch.Items {
		dt, order := core.DType(r.u8()), core.Order(r.u8())
		r.u8()
		r.u8()
		ndim := int(r.u32())
		if r.err == nil && ndim > core.MaxDims {
			r.fail()
		}
		if r.err != nil {
			return nil, o, r.err
		}
		shape := make([]int, ndim)
		for j := range shape {
			shape[j] = int(r.i64()) // any int64: core refuses what is negative or too large
		}
		x := &core.Extern{DType: dt, Shape: shape, Order: order, Handle: int64(i)}
		if _, err := x.Size(); r.err == nil && err != nil {
			return nil, o, core.NewError(core.KindOf(err), err, "item %d", i)
		}
		batch.Items[i] = core.Item{ID: i, DType: dt, Shape: shape, Order: order, Extern: x}
	}
	for range nnames {
		n := int(r.u32())
		r.u32()
		o.Names = append(o.Names, r.padded(n))
	}
	if r.err == nil && r.off != len(b) {
		r.fail()
	}
	if r.err != nil {
		return nil, o, r.err
	}
	return batch, o, nil
}

// int reads an i64 that must fit an int32 (negative values included, for
// core to refuse with its own error).
func (r *reader) int() int {
	v := r.i64()
	if r.err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
		r.fail()
	}
	return int(v)
}

// ---- Table answers ----

// TxOutcome is the outcome of a guest's transaction, by ref id.
type TxOutcome struct {
	RefID   uuid.UUID
	Outcome core.Outcome
}

// TableAnswer is a guest table's answer to one call: the call's own
// results, and every transaction the call ended, with its outcome.
type TableAnswer struct {
	Values [4]int64   // sweep: [ended]; stats: [open, receivers active, bytes served, serves]
	Text   string     // manifest: the nonce
	Status *TxOutcome // status: the transaction as it is
	Ended  []TxOutcome
}

// AppendTableAnswer appends a's layout:
//
//	4 × i64 values, u32 text length, u32 ended count, u32 1 with a
//	status (else 0), u32 0, text padded to a multiple of 8,
//	the status's outcome, if any, then the ended ones
//
// An outcome: 16 ref id, u8 state, 3 × u8 0, u32 receiver count, and per
// receiver: u32 id length, u8 state, 3 × u8 0, i64 bytes, i64 first seen
// and i64 last seen (Unix ns), the id padded to a multiple of 8.
func AppendTableAnswer(dst []byte, a *TableAnswer) []byte {
	le := binary.LittleEndian
	for _, v := range a.Values {
		dst = le.AppendUint64(dst, uint64(v))
	}
	dst = le.AppendUint32(dst, uint32(len(a.Text)))
	dst = le.AppendUint32(dst, uint32(len(a.Ended)))
	dst = le.AppendUint32(dst, uint32(b2u8(a.Status != nil)))
	dst = le.AppendUint32(dst, 0)
	dst = appendPadded(dst, a.Text)
	if a.Status != nil {
		dst = appendOutcome(dst, a.Status)
	}
	for i := range a.Ended {
		dst = appendOutcome(dst, &a.Ended[i])
	}
	return dst
}

func appendOutcome(dst []byte, o *TxOutcome) []byte {
	le := binary.LittleEndian
	dst = append(dst, o.RefID[:]...)
	dst = append(dst, uint8(o.Outcome.State), 0, 0, 0)
	dst = le.AppendUint32(dst, uint32(len(o.Outcome.Receivers)))
	for _, r := range o.Outcome.Receivers {
		dst = le.AppendUint32(dst, uint32(len(r.ID)))
		dst = append(dst, uint8(r.State), 0, 0, 0)
		dst = le.AppendUint64(dst, uint64(r.Bytes))
		dst = le.AppendUint64(dst, uint64(r.FirstSeen.UnixNano()))
		dst = le.AppendUint64(dst, uint64(r.LastSeen.UnixNano()))
		dst = appendPadded(dst, r.ID)
	}
	return dst
}

// ReadTableAnswer reads a table answer.
func ReadTableAnswer(b []byte) (*TableAnswer, error) {
	r := reader{b: b, what: "table answer"}
	a := &TableAnswer{}
	for i := range a.Values {
		a.Values[i] = r.i64()
	}
	nt := int(r.u32())
	nended := r.count(24)
	status := r.u32()
	r.u32()
	if r.err == nil && status > 1 {
		r.fail()
	}
	a.Text = r.padded(nt)
	if status == 1 {
		o := r.outcome()
		a.Status = &o
	}
	for range nended {
		a.Ended = append(a.Ended, r.outcome())
	}
	if r.err == nil && r.off != len(b) {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	return a, nil
}

func (r *reader) outcome() TxOutcome {
	o := TxOutcome{RefID: r.uuid()}
	o.Outcome.State = core.State(r.u8())
	r.next(3)
	n := r.count(32)
	if r.err == nil && o.Outcome.State > core.StateDeleted {
		r.fail()
	}
	for range n {
		id := int(r.u32())
		st := core.ReceiverState(r.u8())
		r.next(3)
		rs := core.ReceiverStatus{State: st, Bytes: r.i64(), FirstSeen: time.Unix(0, r.i64()), LastSeen: time.Unix(0, r.i64())}
		rs.ID = r.padded(id)
		if r.err == nil && (st > core.ReceiverFailed || rs.Bytes < 0) {
			r.fail()
		}
		if r.err != nil {
			return o
		}
		o.Outcome.Receivers = append(o.Outcome.Receivers, rs)
	}
	return o
}
