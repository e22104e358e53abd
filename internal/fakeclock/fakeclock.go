// Package fakeclock is a clock that tests move by hand, for the tables,
// servers and hosts whose timeouts and sweeps a test drives.
package fakeclock

import (
	"sync"
	"time"
)

// Start is the instant tests start their clocks at unless they need
// another: 2023-11-14 22:13:20 UTC.
var Start = time.Unix(1_700_000_000, 0)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock at start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}
