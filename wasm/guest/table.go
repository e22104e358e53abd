//go:build wasip1

package main

import (
	"errors"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/wasm/internal/layout"
)

// Encoding by reference and the transaction table, for arrays the host
// keeps: the guest sees their descriptions, the ref ids, tokens and
// receiver ids, and never an array byte. The host computes manifests and
// writes ranges from its own memory; the table grants the requests
// (core.Table.GrantManifest, GrantServe) and keeps the books.

// hostRandom fills [ptr, ptr+n) from the host's source of randomness for
// the call in progress (the host's Rand option), and returns 0, or
// non-zero when that source failed.
//
//go:wasmimport viacodec random
func hostRandom(ptr unsafe.Pointer, n uint32) uint32

// hostRand reads the host's randomness: the Rand of the ref ids, tokens
// and nonces the guest mints, so that they come from the same source as a
// native host's would.
type hostRand struct{}

func (hostRand) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if hostRandom(unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p))) != 0 {
		return 0, errors.New("the host's source of randomness failed")
	}
	return len(p), nil
}

// vc_encode_ref encodes a parcel by reference from source: its held slots
// are the host's arrays. buf holds the parcel (parcelLen bytes) and then
// the source (sourceLen bytes). It returns the encoded layout.
//
//go:wasmexport vc_encode_ref
func vcEncodeRef(buf, parcelLen, sourceLen uint32, maxDepth, refThreshold int64) uint64 {
	return result(encodeRef(buf, parcelLen, sourceLen, maxDepth, refThreshold))
}

func encodeRef(ptr, parcelLen, sourceLen uint32, maxDepth, refThreshold int64) ([]byte, error) {
	if parcelLen+sourceLen < parcelLen {
		return nil, abi.Errorf(core.KindInvalid, "a parcel of %d bytes and a source of %d overflow", parcelLen, sourceLen)
	}
	b, err := view(ptr, parcelLen+sourceLen, "parcel")
	if err != nil {
		return nil, err
	}
	skel, slots, err := layout.ReadParcel(b[:parcelLen])
	if err != nil {
		return nil, err
	}
	// The export layer's options check max_depth as every shell's do.
	inline, err := abi.EncOptions{MaxDepth: maxDepth}.EncMode()
	if err != nil {
		return nil, err
	}
	mode, err := core.EncOptions{
		MaxDepth: inline.Options().MaxDepth, ByRef: true, RefThreshold: refThreshold,
		Source: string(b[parcelLen:]), Rand: hostRand{},
	}.EncMode()
	if err != nil {
		return nil, err
	}
	m, err := abi.Encode(skel, slots, mode)
	if err != nil {
		return nil, err
	}
	return layout.AppendEncoded(make([]byte, 0, m.Len()+128), m)
}

// table is a core.Table whose batches the host holds. Its clock is the
// host's: every call brings the time (now).
type table struct {
	t     *core.Table
	now   time.Time
	open  map[uuid.UUID]*core.Transaction
	ended []layout.TxOutcome // ended during the calls since the last answer
}

// tableOut is the buffer of the table's answers, the guest's own: an
// answer stays valid until the next table call, and is never freed.
var tableOut []byte

// answer packs a, with the transactions ended since the last answer, into
// tableOut; after a failure the ended ones wait for the next answer.
func (t *table) answer(a *layout.TableAnswer, err error) uint64 {
	if err != nil {
		return layout.PackStatus(status(err))
	}
	a.Ended, t.ended = t.ended, nil
	tableOut = layout.AppendTableAnswer(tableOut[:0], a)
	return layout.PackResult(addr(tableOut[:1]), uint32(len(tableOut)))
}

// vc_table_new makes a table; its answer's first value is its handle.
//
//go:wasmexport vc_table_new
func vcTableNew(keepFinished, maxFinished int64) uint64 {
	t := &table{open: map[uuid.UUID]*core.Transaction{}}
	maxF := int(maxFinished)
	if int64(maxF) != maxFinished {
		maxF = -1
	}
	ct, err := core.NewTable(core.TableOptions{
		Clock: func() time.Time { return t.now }, Rand: hostRand{}, KeepFinished: time.Duration(keepFinished),
		MaxFinished: maxF,
	})
	if err != nil {
		return layout.PackStatus(status(err))
	}
	t.t = ct
	return t.answer(&layout.TableAnswer{Values: [4]int64{handles.Add(t)}}, nil)
}

// use returns table h with its clock set to now, and the end of the use.
func use(h, now int64) (*table, func(), error) {
	t, done, err := abi.Use[*table](handles, h, "a table handle")
	if err == nil {
		t.now = time.Unix(0, now)
	}
	return t, done, err
}

// request runs op on table h with the request at [ptr, ptr+n).
func request(h int64, ptr, n uint32, now int64, op func(*table, *layout.TableRequest) (*layout.TableAnswer, error)) uint64 {
	t, done, err := use(h, now)
	if err != nil {
		return layout.PackStatus(status(err))
	}
	defer done()
	b, err := view(ptr, n, "request")
	if err != nil {
		return t.answer(nil, err)
	}
	q, err := layout.ReadTableRequest(b)
	if err != nil {
		return t.answer(nil, err)
	}
	a, err := op(t, q)
	return t.answer(a, err)
}

// vc_table_publish publishes a batch the host holds (a publish layout).
//
//go:wasmexport vc_table_publish
func vcTablePublish(h int64, ptr, n uint32, now int64) uint64 {
	t, done, err := use(h, now)
	if err != nil {
		return layout.PackStatus(status(err))
	}
	defer done()
	a, err := t.publish(ptr, n)
	return t.answer(a, err)
}

func (t *table) publish(ptr, n uint32) (*layout.TableAnswer, error) {
	b, err := view(ptr, n, "publish")
	if err != nil {
		return nil, err
	}
	batch, o, err := layout.ReadPublish(b)
	if err != nil {
		return nil, err
	}
	id := batch.Ref.RefID
	o.OnDone = func(out core.Outcome) {
		delete(t.open, id)
		t.ended = append(t.ended, layout.TxOutcome{RefID: id, Outcome: out})
	}
	tx, err := t.t.Publish(batch, o)
	if err != nil {
		return nil, err
	}
	t.open[id] = tx
	return &layout.TableAnswer{}, nil
}

// vc_table_manifest grants a manifest request; the answer's text is the
// nonce.
//
//go:wasmexport vc_table_manifest
func vcTableManifest(h int64, ptr, n uint32, now int64) uint64 {
	return request(h, ptr, n, now, func(t *table, q *layout.TableRequest) (*layout.TableAnswer, error) {
		nonce, err := t.t.GrantManifest(q.RefID, q.Token, q.Receiver)
		return &layout.TableAnswer{Text: nonce}, err
	})
}

// vc_table_serve grants a request for a range of an item.
//
//go:wasmexport vc_table_serve
func vcTableServe(h int64, ptr, n uint32, now int64) uint64 {
	return request(h, ptr, n, now, func(t *table, q *layout.TableRequest) (*layout.TableAnswer, error) {
		item := int(q.Item)
		if int64(item) != q.Item {
			item = -1
		}
		return &layout.TableAnswer{}, t.t.GrantServe(q.RefID, q.Token, q.Receiver, q.Hop, item, q.Off, q.N)
	})
}

// vc_table_confirm records a receipt.
//
//go:wasmexport vc_table_confirm
func vcTableConfirm(h int64, ptr, n uint32, now int64) uint64 {
	return request(h, ptr, n, now, func(t *table, q *layout.TableRequest) (*layout.TableAnswer, error) {
		return &layout.TableAnswer{}, t.t.ConfirmVia(q.RefID, q.Token, q.Receiver, q.Hop, q.Nonce)
	})
}

// vc_table_status answers the status of an open transaction.
//
//go:wasmexport vc_table_status
func vcTableStatus(h int64, ptr, n uint32, now int64) uint64 {
	return request(h, ptr, n, now, func(t *table, q *layout.TableRequest) (*layout.TableAnswer, error) {
		tx := t.open[q.RefID]
		if tx == nil {
			return nil, abi.Errorf(core.KindUnknownRef, "no open transaction %s", q.RefID)
		}
		state, rs := tx.Status()
		return &layout.TableAnswer{Status: &layout.TxOutcome{RefID: q.RefID, Outcome: core.Outcome{State: state, Receivers: rs}}}, nil
	})
}

// vc_table_abort aborts a transaction, if it is open.
//
//go:wasmexport vc_table_abort
func vcTableAbort(h int64, ptr, n uint32, now int64) uint64 {
	return request(h, ptr, n, now, func(t *table, q *layout.TableRequest) (*layout.TableAnswer, error) {
		if tx := t.open[q.RefID]; tx != nil {
			tx.Abort()
		}
		return &layout.TableAnswer{}, nil
	})
}

// vc_table_delete ends a transaction by ref id (core.Table.Delete).
//
//go:wasmexport vc_table_delete
func vcTableDelete(h int64, ptr, n uint32, now int64) uint64 {
	return request(h, ptr, n, now, func(t *table, q *layout.TableRequest) (*layout.TableAnswer, error) {
		return &layout.TableAnswer{}, t.t.Delete(q.RefID)
	})
}

// vc_table_sweep sweeps at at (Unix ns); the answer's first value is the
// number of transactions it ended.
//
//go:wasmexport vc_table_sweep
func vcTableSweep(h, now, at int64) uint64 {
	t, done, err := use(h, now)
	if err != nil {
		return layout.PackStatus(status(err))
	}
	defer done()
	n := t.t.Sweep(time.Unix(0, at))
	return t.answer(&layout.TableAnswer{Values: [4]int64{int64(n)}}, nil)
}

// vc_table_stats answers the counters: open, receivers active, bytes
// served, serves.
//
//go:wasmexport vc_table_stats
func vcTableStats(h, now int64) uint64 {
	t, done, err := use(h, now)
	if err != nil {
		return layout.PackStatus(status(err))
	}
	defer done()
	s := t.t.Stats()
	return t.answer(&layout.TableAnswer{Values: [4]int64{int64(s.Open), int64(s.ReceiversActive), s.BytesServed, s.Serves}}, nil)
}

// vc_table_close ends every open transaction (StateDeleted).
//
//go:wasmexport vc_table_close
func vcTableClose(h, now int64) uint64 {
	t, done, err := use(h, now)
	if err != nil {
		return layout.PackStatus(status(err))
	}
	defer done()
	t.t.Close()
	return t.answer(&layout.TableAnswer{}, nil)
}
