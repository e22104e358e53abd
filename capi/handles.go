package main

import (
	"sync"

	"github.com/viacodec/viacodec/core"
)

// A handle is how C refers to a Go object: a positive int64 from a table.
// Numbers are never reused, so a released or made-up handle is answered
// with a KindInvalid error instead of reaching another object.
//
// Each entry has a lock that an export holds while it uses the object, so a
// release that races with a use waits for it, and two uses of one handle
// from two threads run one after the other. Different handles never wait
// for each other, except for the instant of a table look-up.
type handleTable struct {
	mu      sync.Mutex
	next    int64
	entries map[int64]*handleEntry
}

type handleEntry struct {
	mu       sync.Mutex
	obj      any
	released bool
}

// closer is implemented by handle objects that hold C memory or other
// resources to give back on release.
type closer interface{ close() }

// handles is the library's one table.
var handles = newHandleTable()

func newHandleTable() *handleTable {
	return &handleTable{entries: map[int64]*handleEntry{}}
}

// add stores obj and returns its handle.
func (t *handleTable) add(obj any) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.entries[t.next] = &handleEntry{obj: obj}
	return t.next
}

// len returns the number of live handles.
func (t *handleTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// lookup returns h's entry, locked; the caller unlocks it.
func (t *handleTable) lookup(h int64) (*handleEntry, error) {
	t.mu.Lock()
	e := t.entries[h]
	t.mu.Unlock()
	if e == nil {
		return nil, errorf(core.KindInvalid, "handle %d is unknown or released", h)
	}
	e.mu.Lock()
	if e.released {
		e.mu.Unlock()
		return nil, errorf(core.KindInvalid, "handle %d is unknown or released", h)
	}
	return e, nil
}

// useHandle returns the object behind h if it is a T, and the function that
// ends the use. what names T in the error ("a message handle").
func useHandle[T any](t *handleTable, h int64, what string) (T, func(), error) {
	var zero T
	e, err := t.lookup(h)
	if err != nil {
		return zero, nil, err
	}
	obj, ok := e.obj.(T)
	if !ok {
		e.mu.Unlock()
		return zero, nil, errorf(core.KindInvalid, "handle %d is not %s", h, what)
	}
	return obj, e.mu.Unlock, nil
}

// release removes h from the table, waits for a use in progress to end,
// and closes the object.
func (t *handleTable) release(h int64) error {
	t.mu.Lock()
	e := t.entries[h]
	delete(t.entries, h)
	t.mu.Unlock()
	if e == nil {
		return errorf(core.KindInvalid, "handle %d is unknown or released", h)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.released = true
	if c, ok := e.obj.(closer); ok {
		c.close()
	}
	e.obj = nil
	return nil
}

// shared is implemented by handle objects that many threads use at once,
// each for as long as a blocking call takes (a host downloading, a
// transaction being waited on). Their entry lock is held only for the
// look-up: the object itself counts its users, and its close (run by
// release under the entry lock) ends the calls in progress and waits for
// them, so that a release never waits for a download to end by itself.
type shared interface {
	// acquire registers a use; it fails once the object is closed.
	acquire() error
	// done ends a use that acquire registered.
	done()
}

// shareHandle returns the object behind h if it is a T, with a use of it
// registered, and the function that ends the use. Unlike useHandle it does
// not keep h's entry locked, so uses of h run in parallel.
func shareHandle[T shared](t *handleTable, h int64, what string) (T, func(), error) {
	var zero T
	obj, unlock, err := useHandle[T](t, h, what)
	if err != nil {
		return zero, nil, err
	}
	defer unlock()
	if err := obj.acquire(); err != nil {
		return zero, nil, err
	}
	return obj, obj.done, nil
}
