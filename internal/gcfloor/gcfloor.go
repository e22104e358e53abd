// Package gcfloor keeps the garbage collector from running while the Go
// heap is small. A library whose heap is a few MB, such as the C library
// that a Python process calls, otherwise collects every few calls: the
// runtime starts a cycle once the heap has grown by GOGC percent (100) of
// what was live, and never later than at 4 MB. After each collection
// gcfloor sets GOGC so that the next one starts when the heap reaches the
// floor, and leaves it at 100 once the live heap is half the floor or
// more: a large heap is collected as usual.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

var once sync.Once

// Start keeps the next collection's heap goal at floor bytes or more for
// the rest of the process. It does nothing when the environment sets GOGC
// (whoever set it has chosen), and only the first call counts.
func Start(floor uint64) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	once.Do(func() {
		t := &tuner{floor: floor, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
		t.tune()
		t.arm()
	})
}

type tuner struct {
	floor   uint64
	percent int
	sample  []metrics.Sample
}

// sentinel is garbage from birth: its finalizer runs after the next
// collection. It holds a pointer so that it is not a tiny allocation,
// which might share a block with live data and never be finalized.
type sentinel struct {
	_ *byte
	_ [8]byte
}

func (t *tuner) arm() {
	runtime.SetFinalizer(new(sentinel), func(*sentinel) {
		t.tune()
		t.arm()
	})
}

// tune sets GOGC for the next cycle from the heap that the last one left
// live.
func (t *tuner) tune() {
	metrics.Read(t.sample)
	live := t.sample[0].Value.Uint64()
	if p := percentFor(live, t.floor); p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// percentFor returns the GOGC that puts the next heap goal at floor for a
// live heap of live bytes, and 100 when that is less. The runtime's goal
// is the larger of live × (1 + GOGC/100) and its heap minimum, 4 MB ×
// GOGC/100: both are kept at floor or below.
func percentFor(live, floor uint64) int {
	if live >= floor/2 {
		return 100
	}
	byLive := (float64(floor)/float64(max(live, 1)) - 1) * 100
	byMinimum := float64(floor) / runtimeHeapMinimum * 100
	return int(min(byLive, byMinimum, maxPercent))
}

// runtimeHeapMinimum is the runtime's heap minimum at GOGC=100.
const runtimeHeapMinimum = 4 << 20

// maxPercent bounds GOGC within the runtime's int32.
const maxPercent = 1 << 30
