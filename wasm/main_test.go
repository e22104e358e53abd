package wasm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/leakcheck"
	"github.com/viacodec/viacodec/wasm/internal/guestbuild"
)

// TestMain fails the run when goroutines outlive the tests: every call,
// sleep and close the tests start must be over once its Runtime is
// closed. Compiled guests stay (one per process), but run no goroutine.
func TestMain(m *testing.M) {
	leakcheck.Main(m, func() {
		if debugGuest.dir != "" {
			os.RemoveAll(debugGuest.dir)
		}
	})
}

// newRuntime returns a Runtime of o, closed when the test ends.
func newRuntime(t testing.TB, o Options) *Runtime {
	t.Helper()
	rt, err := NewRuntime(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// debugGuest is the guest built with -tags viacodec_debug, once per run:
// the release guest has no export that misbehaves on purpose.
var debugGuest struct {
	once sync.Once
	dir  string
	wasm []byte
	err  error
}

// debugRuntime returns a Runtime of o running the debug guest.
func debugRuntime(t testing.TB, o Options) *Runtime {
	t.Helper()
	debugGuest.once.Do(func() {
		if debugGuest.dir, debugGuest.err = os.MkdirTemp("", "viacodec-guest-"); debugGuest.err != nil {
			return
		}
		out := filepath.Join(debugGuest.dir, "debug.wasm")
		if debugGuest.err = guestbuild.Build(context.Background(), "..", out, "viacodec_debug"); debugGuest.err == nil {
			debugGuest.wasm, debugGuest.err = os.ReadFile(out)
		}
	})
	if debugGuest.err != nil {
		t.Fatal(debugGuest.err)
	}
	o.guest = debugGuest.wasm
	return newRuntime(t, o)
}

// debugCall calls a debug export on an instance of rt and returns the
// buffer it returns, if any (packed is true), copied out.
func debugCall(ctx context.Context, rt *Runtime, packed bool, name string, args ...uint64) ([]byte, error) {
	var out []byte
	err := rt.with(ctx, func(ctx context.Context, in *instance) error {
		return debugCallOn(ctx, in, packed, &out, name, args...)
	})
	return out, err
}

func debugCallOn(ctx context.Context, in *instance, packed bool, out *[]byte, name string, args ...uint64) error {
	fn := in.mod.ExportedFunction(name)
	if fn == nil {
		return fmt.Errorf("no export %s", name)
	}
	in.fns[name] = fn
	r, err := in.call(ctx, name, args...)
	if err != nil || !packed {
		return err
	}
	ptr, b, err := in.result(ctx, r)
	if err != nil {
		return err
	}
	*out = append([]byte(nil), b...)
	return in.free(ctx, ptr)
}

// wantKind fails the test unless err has kind k.
func wantKind(t testing.TB, what string, err error, k core.Kind) {
	t.Helper()
	if got := abi.KindOf(err); got != k || err == nil {
		t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, got, k)
	}
}

// roundTrip checks that rt encodes v as core does and decodes it back.
func roundTrip(t testing.TB, rt *Runtime, v any) {
	t.Helper()
	want, err := core.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := rt.EncMode(core.EncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := enc.Marshal(v)
	if err != nil {
		t.Fatalf("guest encode: %v", err)
	}
	if string(got) != string(want) {
		t.Fatalf("guest encode:\n got %x\nwant %x", clip(got), clip(want))
	}
	dec, err := rt.DecMode(core.DecOptions{PassThrough: true})
	if err != nil {
		t.Fatal(err)
	}
	back, err := dec.Decode(got)
	if err != nil {
		t.Fatalf("guest decode: %v", err)
	}
	again, err := core.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(want) {
		t.Fatalf("guest decode, native encode:\n got %x\nwant %x", clip(again), clip(want))
	}
}

// clip shortens b for a failure message.
func clip(b []byte) []byte {
	if len(b) > 256 {
		return b[:256]
	}
	return b
}
