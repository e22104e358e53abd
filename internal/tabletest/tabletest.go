// Package tabletest is one table of test cases for transaction tables:
// core.Table, and the wasm host's table that lives in a guest. Each case
// drives a table through its API (publish, manifest, serve, confirm,
// sweep, abort, delete, close, wait, status), asserts what core's
// contract says, and writes what it saw into a transcript. Run runs the
// cases on one kind of table; Compare runs them on two, from the same
// clock and the same random bytes, and fails where their transcripts
// differ: the same answers and the same errors, nonces included.
package tabletest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/fakeclock"
)

// Table is the API the cases drive: core.Table's, with Publish returning
// a Tx.
type Table interface {
	Publish(b *core.Batch, o core.PublishOptions) (Tx, error)
	Manifest(refID uuid.UUID, token []byte, receiver string) (*core.Manifest, string, error)
	Serve(refID uuid.UUID, token []byte, receiver string, item int, off, n int64) ([]byte, func(), error)
	ServeVia(refID uuid.UUID, token []byte, receiver, hop string, item int, off, n int64) ([]byte, func(), error)
	Confirm(refID uuid.UUID, token []byte, receiver, nonce string) error
	ConfirmVia(refID uuid.UUID, token []byte, receiver, hop, nonce string) error
	Sweep(now time.Time) int
	Stats() core.Stats
	Delete(refID uuid.UUID) error
	PieceSums(refID uuid.UUID, token []byte) *core.PieceSums
	// Close ends every open transaction. No case uses the table after,
	// and every case closes it when it ends: closing twice is harmless.
	Close()
}

// Tx is core.Transaction's API.
type Tx interface {
	Ref() core.BatchRef
	Done() <-chan struct{}
	Outcome() (core.Outcome, bool)
	Wait(ctx context.Context) (core.Outcome, error)
	Abort()
	Status() (core.State, []core.ReceiverStatus)
}

// Maker makes an empty table of o (its Clock, Rand, KeepFinished and
// MaxFinished set).
type Maker func(t testing.TB, o core.TableOptions) Table

// Native adapts a *core.Table.
func Native(t *core.Table) Table { return native{t} }

type native struct{ *core.Table }

func (n native) Publish(b *core.Batch, o core.PublishOptions) (Tx, error) {
	tx, err := n.Table.Publish(b, o)
	if err != nil {
		return nil, err
	}
	return tx, nil
}

// NativeMaker makes core tables.
func NativeMaker(t testing.TB, o core.TableOptions) Table {
	tbl, err := core.NewTable(o)
	if err != nil {
		t.Fatal(err)
	}
	return Native(tbl)
}

// Clock is a settable clock that knows where it started.
type Clock struct {
	*fakeclock.Clock
	start time.Time
}

func newClock() *Clock { return &Clock{Clock: fakeclock.New(fakeclock.Start), start: fakeclock.Start} }

// since returns t as an offset from the clock's start.
func (c *Clock) since(t time.Time) time.Duration { return t.Sub(c.start) }

// lockedRand is a seeded random source that is safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func seeded(name, what string) *lockedRand {
	return &lockedRand{r: rand.NewChaCha8(sha256.Sum256([]byte(what + "/" + name)))}
}

// Env is one case's world: a fresh table on a fake clock and seeded
// randomness, its batches, and the transcript.
type Env struct {
	T     testing.TB
	Table Table
	Clock *Clock

	refs  *lockedRand // ref ids and tokens of the batches
	mu    sync.Mutex
	items map[uuid.UUID][][]byte // the published bytes, by ref and item
	log   []string
}

// KeepFinished is the cases' TableOptions.KeepFinished.
const KeepFinished = 10 * time.Minute

// MaxFinished is the cases' TableOptions.MaxFinished.
const MaxFinished = 8

// Note adds a line to the transcript.
func (e *Env) Note(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

// Describe writes err as the transcript does: its kind and its message
// without the name of the package that raised it.
func Describe(err error) string {
	if err == nil {
		return "ok"
	}
	msg := err.Error()
	for _, p := range []string{"core: ", "wasm: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return fmt.Sprintf("%v: %s", core.KindOf(err), msg)
}

// Expect notes err and fails the case unless its kind is k (KindNone: no
// error).
func (e *Env) Expect(what string, err error, k core.Kind) {
	e.T.Helper()
	e.Note("%s: %s", what, Describe(err))
	if core.KindOf(err) != k {
		e.T.Errorf("%s: %v, want kind %v", what, err, k)
	}
}

// Batch returns a batch at source "server" of float32 items of the given
// element counts, its bytes a pattern of the batch's seeded ref id.
func (e *Env) Batch(counts ...int) *core.Batch {
	e.T.Helper()
	b := &core.Batch{Ref: core.BatchRef{Source: "server"}}
	if _, err := e.refs.Read(b.Ref.RefID[:]); err != nil {
		e.T.Fatal(err)
	}
	b.Ref.RefID[6] = b.Ref.RefID[6]&0x0f | 0x40 // version 4
	b.Ref.RefID[8] = b.Ref.RefID[8]&0x3f | 0x80 // RFC 4122 variant
	if _, err := e.refs.Read(b.Ref.Token[:]); err != nil {
		e.T.Fatal(err)
	}
	var data [][]byte
	for i, n := range counts {
		d := make([]byte, 4*n)
		for j := range d {
			d[j] = byte(int(b.Ref.RefID[i%16]) + j*7 + i)
		}
		b.Items = append(b.Items, core.Item{ID: i, DType: core.DTypeFloat32, Shape: []int{n}, Data: d})
		b.Ref.Bytes += int64(len(d))
		data = append(data, bytes.Clone(d))
	}
	b.Ref.Items = len(counts)
	e.mu.Lock()
	e.items[b.Ref.RefID] = data
	e.mu.Unlock()
	return b
}

// Publish publishes a batch of the given item counts under o and fails
// the case on an error.
func (e *Env) Publish(o core.PublishOptions, counts ...int) Tx {
	e.T.Helper()
	tx, err := e.Table.Publish(e.Batch(counts...), o)
	if err != nil {
		e.T.Fatal(err)
	}
	return tx
}

// Fetch downloads every item of ref as receiver, in ranges of chunk bytes
// (default 1 MiB), checks the bytes against those published, and
// confirms.
func (e *Env) Fetch(ref core.BatchRef, receiver string, chunk int64) error {
	tok := ref.Token[:]
	m, nonce, err := e.Table.Manifest(ref.RefID, tok, receiver)
	if err != nil {
		return err
	}
	e.mu.Lock()
	want := e.items[ref.RefID]
	e.mu.Unlock()
	if len(m.Items) != len(want) {
		return fmt.Errorf("manifest of %d items, %d published", len(m.Items), len(want))
	}
	for i := range m.Items {
		mi := &m.Items[i]
		dst := make([]byte, mi.Bytes)
		for off, n := range m.Chunks(mi, chunk) {
			data, release, err := e.Table.Serve(ref.RefID, tok, receiver, mi.ID, off, n)
			if err != nil {
				return err
			}
			copy(dst[off:], data)
			release()
		}
		if !bytes.Equal(dst, want[mi.ID]) {
			return fmt.Errorf("item %d: not the bytes published", mi.ID)
		}
	}
	return e.Table.Confirm(ref.RefID, tok, receiver, nonce)
}

// Serve serves range [off, off+n) of item of ref to receiver through hop
// ("" for none), releases it at once, and notes the answer under what.
func (e *Env) Serve(what string, ref core.BatchRef, receiver, hop string, item int, off, n int64, k core.Kind) {
	e.T.Helper()
	_, release, err := e.Table.ServeVia(ref.RefID, ref.Token[:], receiver, hop, item, off, n)
	if err == nil {
		release()
	}
	e.Expect(what, err, k)
}

// Outcome describes o for the transcript, its times as offsets from the
// clock's start.
func (e *Env) Outcome(o core.Outcome) string {
	return e.status(o.State, o.Receivers)
}

func (e *Env) status(s core.State, rs []core.ReceiverStatus) string {
	var b strings.Builder
	b.WriteString(s.String())
	for _, r := range rs {
		fmt.Fprintf(&b, " [%s %s %dB %v..%v]", r.ID, r.State, r.Bytes, e.Clock.since(r.FirstSeen), e.Clock.since(r.LastSeen))
	}
	return b.String()
}

// Status notes tx's status and returns it as the transcript writes it.
func (e *Env) Status(what string, tx Tx) string {
	s, rs := tx.Status()
	d := e.status(s, rs)
	e.Note("%s: status %s", what, d)
	return d
}

// Ended notes tx's outcome, and fails the case unless it has ended in
// state want.
func (e *Env) Ended(what string, tx Tx, want core.State) core.Outcome {
	e.T.Helper()
	out, done := tx.Outcome()
	e.Note("%s: done %v, outcome %s", what, done, e.Outcome(out))
	if !done || out.State != want {
		e.T.Errorf("%s: done %v, state %v; want %v", what, done, out.State, want)
	}
	return out
}

// Open fails the case if tx has ended.
func (e *Env) Open(what string, tx Tx) {
	e.T.Helper()
	out, done := tx.Outcome()
	e.Note("%s: done %v", what, done)
	if done {
		e.T.Errorf("%s: ended (%v), want open", what, out.State)
	}
}

// Stats notes the table's counters.
func (e *Env) Stats(what string) core.Stats {
	s := e.Table.Stats()
	e.Note("%s: stats %+v", what, s)
	return s
}

// Case is one test case.
type Case struct {
	Name string
	Run  func(e *Env)
}

// Run runs every case on a fresh table of mk, as subtests, and returns
// the transcripts by case name.
func Run(t *testing.T, mk Maker) map[string][]string {
	out := map[string][]string{}
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			out[c.Name] = runCase(t, mk, c)
		})
	}
	return out
}

func runCase(t *testing.T, mk Maker, c Case) []string {
	clock := newClock()
	tbl := mk(t, core.TableOptions{Clock: clock.Now, Rand: seeded(c.Name, "table"), KeepFinished: KeepFinished, MaxFinished: MaxFinished})
	e := &Env{T: t, Table: tbl, Clock: clock, refs: seeded(c.Name, "refs"), items: map[uuid.UUID][][]byte{}}
	defer tbl.Close()
	c.Run(e)
	return e.log
}

// Compare runs every case on a table of a and one of b and fails where
// their transcripts differ.
func Compare(t *testing.T, a, b Maker) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			la, lb := runCase(t, a, c), runCase(t, b, c)
			if len(la) == 0 {
				t.Fatal("empty transcript")
			}
			for i := range max(len(la), len(lb)) {
				var x, y string
				if i < len(la) {
					x = la[i]
				}
				if i < len(lb) {
					y = lb[i]
				}
				if x != y {
					t.Fatalf("transcripts differ at line %d:\n  %s\n  %s", i, x, y)
				}
			}
		})
	}
}

// publishErr publishes and returns only the error; a transaction it
// opened after all is aborted.
func (e *Env) publishErr(b *core.Batch, o core.PublishOptions) error {
	tx, err := e.Table.Publish(b, o)
	if err == nil && tx != nil {
		tx.Abort()
	}
	return err
}

// second returns the error of Serve.
func second(_ []byte, release func(), err error) error {
	if release != nil {
		release()
	}
	return err
}

// lastErr returns the error of Manifest.
func lastErr(_ *core.Manifest, _ string, err error) error { return err }

// ids returns the ids of o's receivers, in order.
func ids(o core.Outcome) []string {
	var out []string
	for _, r := range o.Receivers {
		out = append(out, r.ID)
	}
	return out
}
