package wasm

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// longMessage is a message of n maps {"a": 1000} (6 bytes each), built
// from bytes: a guest takes about a microsecond for each, which makes a
// decode long enough to interrupt.
func longMessage(t testing.TB, n int) []byte {
	t.Helper()
	empty, err := core.Marshal([]any{})
	if err != nil {
		t.Fatal(err)
	}
	// The envelope, the version, the body [] (0x80) and the empty side
	// table (0x80): the body's head is the last byte but one.
	if !bytes.HasSuffix(empty, []byte{0x80, 0x80}) {
		t.Fatalf("an empty list encodes as %x", empty)
	}
	msg := append([]byte{}, empty[:len(empty)-2]...)
	msg = append(msg, 0x9a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	msg = append(msg, bytes.Repeat([]byte{0xa1, 0x61, 'a', 0x19, 0x03, 0xe8}, n)...)
	return append(msg, 0x80)
}

// TestInterruptLongDecode: under the default Options, a deadline or a
// cancellation stops a guest decode that would take seconds, within
// moments, with its kind (KindTimeout, KindAborted); the instance it ran
// on is closed and the runtime serves on. So does the Runtime's Close,
// which returns once the decode has stopped. A garbage collection of the
// host during the guest's call (which stops the host's world, timers
// included, until the guest's goroutine reaches Go code) does not hold
// it up. Goroutines: TestMain.
func TestInterruptLongDecode(t *testing.T) {
	const after, grace = 100 * time.Millisecond, time.Second
	rt := newRuntime(t, Options{MemoryLimit: 256 << 20})
	dec, err := rt.DecMode(core.DecOptions{MaxElements: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	msg := longMessage(t, 4<<20)
	for _, c := range []struct {
		name string
		kind core.Kind
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", core.KindTimeout, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(t.Context(), after)
		}},
		{"cancel", core.KindAborted, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(after, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			works(t, rt)
			ctx, cancel := c.ctx()
			defer cancel()
			collected := make(chan time.Duration)
			start := time.Now()
			time.AfterFunc(after/2, func() {
				runtime.GC()
				collected <- time.Since(start)
			})
			v, err := dec.DecodeContext(ctx, msg)
			elapsed := time.Since(start)
			if gc := <-collected; gc > after+grace {
				t.Errorf("a garbage collection started after %v ended after %v", after/2, gc)
			}
			if v != nil {
				t.Fatal("an interrupted decode returned a value")
			}
			wantKind(t, c.name, err, c.kind)
			t.Logf("stopped after %v: %v", elapsed, err)
			if elapsed > after+grace {
				t.Errorf("the decode stopped after %v, its context ended after %v", elapsed, after)
			}
			for _, in := range idle(rt) {
				if in.broken || in.mod.IsClosed() {
					t.Fatal("a broken instance went back to the pool")
				}
			}
			works(t, rt)
		})
	}
	t.Run("close", func(t *testing.T) {
		rt := newRuntime(t, Options{MemoryLimit: 256 << 20})
		dec, _ := rt.DecMode(core.DecOptions{MaxElements: 1 << 24})
		works(t, rt)
		time.AfterFunc(after, func() { rt.Close() })
		start := time.Now()
		_, err := dec.DecodeContext(t.Context(), msg)
		elapsed := time.Since(start)
		wantKind(t, "decode under Close", err, core.KindAborted)
		if elapsed > after+grace {
			t.Errorf("the decode stopped after %v, the runtime closed after %v", elapsed, after)
		}
	})
}
