package wasm

import (
	"bytes"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/internal/tabletest"
)

var _ hostdl.Table = (*Table)(nil)

// guestTable adapts a Table to the shared cases.
type guestTable struct{ *Table }

func (g guestTable) Publish(b *core.Batch, o core.PublishOptions) (tabletest.Tx, error) {
	tx, err := g.Table.Publish(b, o)
	if err != nil {
		return nil, err
	}
	return tx, nil
}

// guestMaker makes tables in guests of rt.
func guestMaker(rt *Runtime) tabletest.Maker {
	return func(t testing.TB, o core.TableOptions) tabletest.Table {
		tbl, err := rt.NewTable(o)
		if err != nil {
			t.Fatal(err)
		}
		return guestTable{tbl}
	}
}

// TestTableCases runs core's table cases (internal/tabletest) on a table
// in a guest and on a core.Table, from the same clock and randomness: the
// same answers and errors, nonces included.
func TestTableCases(t *testing.T) {
	rt := newRuntime(t, Options{})
	tabletest.Compare(t, tabletest.NativeMaker, guestMaker(rt))
}

// quiet discards a host's logs.
var quiet = slog.New(slog.DiscardHandler)

// quietHost starts a native hostdl.Host on loopback that logs nothing,
// closed when the test ends.
func quietHost(t testing.TB) *hostdl.Host {
	t.Helper()
	h, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// guestHost starts a hostdl.Host whose table lives in a guest of rt.
func guestHost(t testing.TB, rt *Runtime, o hostdl.HostOptions) (*hostdl.Host, *Table) {
	t.Helper()
	var table *Table
	o.Logger = quiet
	o.NewTable = func(to core.TableOptions) (hostdl.Table, error) {
		tbl, err := rt.NewTable(to)
		table = tbl
		return tbl, err
	}
	h, err := hostdl.NewHost(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if h.Table() != hostdl.Table(table) {
		t.Fatal("the host does not serve the guest's table")
	}
	return h, table
}

// TestTableTimesOutOnTime: a transaction in the guest ends by the host's
// sweeper when it has been idle for its timeout on the wall clock: not
// before, and within a few sweeps after.
func TestTableTimesOutOnTime(t *testing.T) {
	rt := newRuntime(t, Options{})
	const timeout, sweep = 400 * time.Millisecond, 10 * time.Millisecond
	h, table := guestHost(t, rt, hostdl.HostOptions{Server: hostdl.ServerOptions{SweepInterval: sweep}})
	enc, err := rt.EncMode(core.EncOptions{ByRef: true, RefThreshold: 8, Source: h.Source()})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := enc.Encode([]any{arrayOf(t, core.DTypeFloat64, core.RowMajor)})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := table.Publish(msg.Batch(), core.PublishOptions{Receivers: 2, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	// Activity halfway restarts the timeout.
	time.Sleep(timeout / 2)
	ref := tx.Ref()
	active := time.Now() // no later than the table records the request
	if _, _, err := table.Manifest(ref.RefID, ref.Token[:], "a"); err != nil {
		t.Fatal(err)
	}
	out, err := tx.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	idle := time.Since(active)
	t.Logf("ended %v after the last activity (timeout %v, sweeps every %v)", idle, timeout, sweep)
	if out.State != core.StateTimedOut || len(out.Receivers) != 1 || out.Receivers[0].State != core.ReceiverFailed {
		t.Fatalf("outcome %+v", out)
	}
	if idle < timeout || idle > timeout+time.Second {
		t.Fatalf("ended %v after the last activity, timeout %v", idle, timeout)
	}
}

// TestTableLost: when the table's guest fails, the table is lost: its
// open transactions end (StateDeleted, Done, OnDone), every later call
// fails with KindAborted, and the Runtime goes on serving.
func TestTableLost(t *testing.T) {
	rt := debugRuntime(t, Options{})
	table, err := rt.NewTable(core.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := batchOf(t, rt, 2)
	var outcomes []core.Outcome
	tx, err := table.Publish(b, core.PublishOptions{Receivers: 1, OnDone: func(o core.Outcome) { outcomes = append(outcomes, o) }})
	if err != nil {
		t.Fatal(err)
	}
	ref := tx.Ref()
	data, release, err := table.Serve(ref.RefID, ref.Token[:], "a", 0, 0, 8)
	if err != nil || !bytes.Equal(data, b.Items[0].Data[:8]) {
		t.Fatalf("serve: %v", err)
	}
	table.mu.Lock()
	var out []byte
	perr := debugCallOn(t.Context(), table.in, false, &out, "vc_debug_panic")
	table.mu.Unlock()
	wantKind(t, "panic", perr, core.KindInvalid)

	_, _, err = table.Manifest(ref.RefID, ref.Token[:], "a")
	wantKind(t, "manifest after the failure", err, core.KindAborted)
	if _, done := tx.Outcome(); done {
		t.Fatal("done while a serve is in progress")
	}
	release()
	if o, done := tx.Outcome(); !done || o.State != core.StateDeleted || len(outcomes) != 1 {
		t.Fatalf("outcome %+v, done %v, OnDone %d times", o, done, len(outcomes))
	}
	_, err = table.Publish(batchOf(t, rt, 1), core.PublishOptions{})
	wantKind(t, "publish", err, core.KindAborted)
	wantKind(t, "confirm", table.Confirm(ref.RefID, ref.Token[:], "a", "00"), core.KindAborted)
	wantKind(t, "delete", table.Delete(ref.RefID), core.KindAborted)
	if n, s := table.Sweep(time.Now()), table.Stats(); n != 0 || s != (core.Stats{}) {
		t.Fatalf("sweep %d, stats %+v", n, s)
	}
	table.Close()
	works(t, rt)
}

// TestTableRuntimeClose: closing the Runtime loses its tables.
func TestTableRuntimeClose(t *testing.T) {
	rt, err := NewRuntime(Options{})
	if err != nil {
		t.Fatal(err)
	}
	table, err := rt.NewTable(core.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := table.Publish(batchOf(t, rt, 1), core.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	later := batchOf(t, rt, 1)
	rt.Close()
	if o, done := tx.Outcome(); !done || o.State != core.StateDeleted {
		t.Fatalf("outcome %+v, done %v", o, done)
	}
	_, err = table.Publish(later, core.PublishOptions{})
	wantKind(t, "publish after the runtime closed", err, core.KindAborted)
	if _, err := rt.NewTable(core.TableOptions{}); core.KindOf(err) != core.KindAborted {
		t.Fatalf("NewTable after Close: %v", err)
	}
}

// flakyRand fails its first read, then reads crypto/rand.
type flakyRand struct{ failed bool }

func (f *flakyRand) Read(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, errors.New("no entropy yet")
	}
	return rand.Read(p)
}

// TestTablePublishChecks: what the host cannot serve is refused before
// the guest sees it; a failing source of randomness fails the call, as
// natively, and the table goes on.
func TestTablePublishChecks(t *testing.T) {
	rt := newRuntime(t, Options{})
	table, err := rt.NewTable(core.TableOptions{Rand: &flakyRand{}})
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	_, err = table.Publish(batchOf(t, rt, 1), core.PublishOptions{})
	if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "nonce key") {
		t.Fatalf("publish with a failing Rand: %v", err)
	}
	for name, change := range map[string]func(*core.Batch){
		"item id":      func(b *core.Batch) { b.Items[1].ID = 0 },
		"short data":   func(b *core.Batch) { b.Items[0].Data = b.Items[0].Data[:3] },
		"bad dtype":    func(b *core.Batch) { b.Items[0].DType = core.DTypeInvalid },
		"bad order":    func(b *core.Batch) { b.Items[0].Order = 5 },
		"held here":    func(b *core.Batch) { b.Items[0].Extern = &core.Extern{DType: core.DTypeFloat64, Shape: []int{2, 3}} },
		"negative dim": func(b *core.Batch) { b.Items[0].Shape = []int{-1} },
	} {
		b := batchOf(t, rt, 2)
		change(b)
		_, err := table.Publish(b, core.PublishOptions{})
		wantKind(t, name, err, core.KindMismatch)
	}
	if _, err := table.Publish(batchOf(t, rt, 2), core.PublishOptions{}); err != nil {
		t.Fatalf("a sound batch after the refusals: %v", err)
	}
	// hostdl's Host publishes core batches on core tables only.
	h, _ := guestHost(t, rt, hostdl.HostOptions{})
	if _, err := h.Publish(batchOf(t, rt, 1), core.PublishOptions{}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("Host.Publish on a guest table: %v", err)
	}
}

// batchOf encodes n small arrays by reference in rt and returns the batch.
func batchOf(t testing.TB, rt *Runtime, n int) *core.Batch {
	t.Helper()
	enc, err := rt.EncMode(core.EncOptions{ByRef: true, RefThreshold: 8, Source: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	v := make([]any, n)
	for i := range v {
		v[i] = arrayOf(t, core.DTypeFloat64, core.RowMajor)
	}
	msg, err := enc.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return msg.Batch()
}

// TestTableSurvivesTraffic: a table in a small guest that sees many short
// transactions within KeepFinished forgets the oldest finished ones
// (their ref ids answer KindUnknownRef instead of KindExpired) instead of
// running out of memory and losing the open ones.
func TestTableSurvivesTraffic(t *testing.T) {
	rt := newRuntime(t, Options{MemoryLimit: 16 << 20})
	table, err := rt.NewTable(core.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	batch := func() *core.Batch {
		a, _ := core.ArrayOf([]int{2}, []float32{1, 2})
		b := &core.Batch{Ref: core.BatchRef{Source: "http://127.0.0.1:1", RefID: uuid.New(), Items: 1, Bytes: 8},
			Items: []core.Item{{DType: a.DType, Shape: a.Shape, Data: a.Data}}}
		rand.Read(b.Ref.Token[:])
		return b
	}
	long, err := table.Publish(batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 70_000 // a 16 MiB guest kept about 57,000 finished ones, then died
	var first uuid.UUID
	start := time.Now()
	for i := range n {
		b := batch()
		tx, err := table.Publish(b, core.PublishOptions{Receivers: 1})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		tx.Abort()
		if i == 0 {
			first = b.Ref.RefID
		}
	}
	t.Logf("%d transactions in %v", n, time.Since(start))
	if state, _ := long.Status(); state != core.StateOpen {
		t.Fatalf("the open transaction is %v after %d short ones", state, n)
	}
	_, _, err = table.Manifest(first, nil, "r")
	wantKind(t, "manifest of the oldest finished ref", err, core.KindUnknownRef)
}

// TestTablePublishesLargeDimensions: a dimension of 2^31 or more crosses
// into the guest's table, as core.Table takes it.
func TestTablePublishesLargeDimensions(t *testing.T) {
	rt := newRuntime(t, Options{})
	native, err := core.NewTable(core.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	guest, err := rt.NewTable(core.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	for _, shape := range [][]int{{0, 1 << 31}, {1 << 40, 0, 7}} {
		b := &core.Batch{Ref: core.BatchRef{Source: "http://127.0.0.1:1", RefID: uuid.New(), Items: 1},
			Items: []core.Item{{DType: core.DTypeFloat64, Shape: shape, Data: []byte{}}}}
		_, nerr := native.Publish(b, core.PublishOptions{})
		_, gerr := guest.Publish(b, core.PublishOptions{})
		if nerr != nil || gerr != nil {
			t.Errorf("shape %v: core.Table %v, guest %v", shape, nerr, gerr)
		}
	}
}
