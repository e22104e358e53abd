package abi

import (
	"sync"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/gate"
)

// A handle is how a foreign caller refers to a Go object: a positive int64
// from a Table. Numbers are never reused, so a released or made-up handle
// is answered with a KindInvalid error instead of reaching another object.
//
// Every object behind a handle is safe for concurrent use, and every use
// goes through Use, which registers it with the handle's gate.Gate: uses
// run in parallel, a release waits for the uses in progress (after
// cancelling those that block, see Canceler), and a use that starts after
// the release began fails. A call that uses two handles, or one handle
// twice, cannot deadlock against a release.
type Table struct {
	mu      sync.Mutex
	next    int64
	entries map[int64]*entry
}

type entry struct {
	obj  any
	gate gate.Gate
}

// Closer is implemented by objects that give back resources on release,
// once no use is in progress.
type Closer interface{ Close() }

// Canceler is implemented by objects whose uses may block (a download, a
// wait): Cancel ends them, early, before a release waits for them.
type Canceler interface{ Cancel() }

// NewTable returns an empty handle table.
func NewTable() *Table {
	return &Table{entries: map[int64]*entry{}}
}

// Add stores obj and returns its handle.
func (t *Table) Add(obj any) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.entries[t.next] = &entry{obj: obj}
	return t.next
}

// Len returns the number of live handles.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Use returns the object behind h if it is a T, with a use registered, and
// the function that ends the use. what names T in the error ("a host").
func Use[T any](t *Table, h int64, what string) (T, func(), error) {
	var zero T
	t.mu.Lock()
	e := t.entries[h]
	t.mu.Unlock()
	if e == nil || !e.gate.Enter() {
		return zero, nil, Errorf(core.KindInvalid, "handle %d is unknown or released", h)
	}
	obj, ok := e.obj.(T)
	if !ok {
		e.gate.Exit()
		return zero, nil, Errorf(core.KindInvalid, "handle %d is not %s", h, what)
	}
	return obj, e.gate.Exit, nil
}

// Release removes h, cancels the object's blocking uses, waits for the
// uses in progress to end and closes the object.
func (t *Table) Release(h int64) error {
	t.mu.Lock()
	e := t.entries[h]
	delete(t.entries, h)
	t.mu.Unlock()
	if e == nil {
		return Errorf(core.KindInvalid, "handle %d is unknown or released", h)
	}
	if c, ok := e.obj.(Canceler); ok {
		c.Cancel()
	}
	e.gate.Close(nil)
	e.gate.Wait()
	if c, ok := e.obj.(Closer); ok {
		c.Close()
	}
	return nil
}
