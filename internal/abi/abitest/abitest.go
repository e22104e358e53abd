// Package abitest holds the helpers that the tests of the export layer
// (internal/abi), of capi's host (capi/internal/abihost) and of the wasm
// layouts (wasm/internal/layout) share. It imports core alone, so that
// internal/abi's own tests can use it too.
package abitest

import (
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/leakcheck"
)

// Within runs f and fails the test, with every goroutine's stack, when f
// has not returned after d: the bound that turns a deadlock into a failure
// instead of a hang. f reports its own failures with t.Error.
func Within(t *testing.T, d time.Duration, what string, f func()) {
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

// WantKind fails the test unless err has kind k, as a foreign caller sees it.
func WantKind(t testing.TB, what string, err error, k core.Kind) {
	t.Helper()
	if got := core.KindOf(err); got != k {
		t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, got, k)
	}
}

// Skeleton encodes v, in which core.SlotIndex values stand for slots, as
// a binding writes a skeleton.
func Skeleton(t testing.TB, v any) []byte {
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

// PlainMode encodes inline with the default options.
func PlainMode(t testing.TB) *core.EncMode {
	t.Helper()
	mode, err := core.EncOptions{}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	return mode
}

// MustArray is core.NewArray for arrays a test knows to be valid.
func MustArray(t testing.TB, dt core.DType, shape []int, order core.Order, data []byte) *core.Array {
	t.Helper()
	a, err := core.NewArray(dt, shape, order, data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
