// Package gate counts the uses in flight of something that can be closed:
// a handle, a guest's memory, a runtime, a client. Uses run in parallel; a
// use that starts after Close fails; whoever closes can wait for the uses
// in flight to end, or have a function run when the last one ends.
//
// A gate is a count, not a reader-writer lock: a goroutine that holds two
// uses, of one gate or of two, cannot deadlock against a Close.
//
// It imports nothing of this module, so hostdl, which the rest of
// internal/ stands on, may use it too: its floor is the ground.
package gate

import "sync"

// Gate counts uses. The zero value is open, with no use in flight.
type Gate struct {
	mu     sync.Mutex
	uses   int
	closed bool
	idle   *sync.Cond // made by the first Wait
	then   func()     // Close's function, until it runs
}

// Enter registers a use, or reports false once the gate is closed.
func (g *Gate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.uses++
	return true
}

// Exit ends a use that Enter registered. The last use to end after Close
// runs Close's function, on this goroutine.
func (g *Gate) Exit() {
	g.mu.Lock()
	g.uses--
	if g.uses < 0 {
		g.mu.Unlock()
		panic("gate: Exit without Enter")
	}
	var then func()
	if g.uses == 0 && g.closed {
		then, g.then = g.then, nil
		if g.idle != nil {
			g.idle.Broadcast()
		}
	}
	g.mu.Unlock()
	if then != nil {
		then()
	}
}

// Close refuses new uses, and reports whether this was the first Close.
// then, unless nil, runs once no use is in flight: at once, on this
// goroutine, when none is; otherwise when the last one ends (see Exit).
// Only the first Close's then runs.
func (g *Gate) Close(then func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.closed = true
	if g.idle != nil {
		g.idle.Broadcast()
	}
	if g.uses > 0 {
		g.then = then
		g.mu.Unlock()
		return true
	}
	g.mu.Unlock()
	if then != nil {
		then()
	}
	return true
}

// Wait blocks until the gate is closed and no use is in flight.
func (g *Gate) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.idle == nil {
		g.idle = sync.NewCond(&g.mu)
	}
	for !g.closed || g.uses > 0 {
		g.idle.Wait()
	}
}
