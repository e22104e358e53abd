package abi

import (
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/leakcheck"
)

// TestMain fails the run when goroutines outlive the tests: every host,
// download and wait the tests start must be gone once they are released.
func TestMain(m *testing.M) {
	leakcheck.Main(m, func() {
		if defaultClient.c != nil { // the library's client lives as long as the process
			defaultClient.c.Close()
		}
	})
}

// within runs f and fails the test, with every goroutine's stack, when f
// has not returned after d: the bound that turns a deadlock into a failure
// instead of a hang. f reports its own failures with t.Error.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s did not finish within %v (deadlock?):\n%s", what, d, leakcheck.Stacks())
	}
}

// wantKind fails the test unless err has kind k, as a foreign caller sees it.
func wantKind(t testing.TB, what string, err error, k core.Kind) {
	t.Helper()
	if got := KindOf(err); got != k {
		t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, got, k)
	}
}

// skeleton encodes v, in which core.SlotIndex values stand for slots, as
// a binding writes a skeleton.
func skeleton(t testing.TB, v any) []byte {
	t.Helper()
	mode, err := core.EncOptions{Slots: true}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := mode.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return m.Bytes()
}

// slotOf is the slot a binding passes for a, viewing a's memory.
func slotOf(a *core.Array) Slot {
	s := Slot{Data: a.Data, DType: int32(a.DType), Order: int32(a.Order)}
	for _, n := range a.Shape {
		s.Shape = append(s.Shape, int64(n))
	}
	return s
}

// destinations allocates fresh memory for every slot of specs, as a
// binding does before Fill or Fetch; the slots describe the arrays too,
// so that Encode can send them again.
func destinations(specs []SlotSpec) []Slot {
	dsts := make([]Slot, len(specs))
	for i, s := range specs {
		dsts[i] = Slot{Data: make([]byte, s.Bytes), DType: s.DType, Order: s.Order}
		for _, n := range s.Shape {
			dsts[i].Shape = append(dsts[i].Shape, int64(n))
		}
	}
	return dsts
}

// plainMode encodes inline with the default options.
func plainMode(t testing.TB) *core.EncMode {
	t.Helper()
	mode, err := EncOptions{}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	return mode
}

// mustArray is core.NewArray for arrays a test knows to be valid.
func mustArray(t testing.TB, dt core.DType, shape []int, order core.Order, data []byte) *core.Array {
	t.Helper()
	a, err := core.NewArray(dt, shape, order, data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
