package wasm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/viacodec/viacodec/core"
)

// TestIdleMemory: an instance that grew past MaxIdleMemory is closed
// after its call; one that did not goes back to the pool.
func TestIdleMemory(t *testing.T) {
	rt := debugRuntime(t, Options{MaxIdleMemory: 24 << 20})
	var small, grown *instance
	err := rt.with(t.Context(), func(ctx context.Context, in *instance) error {
		small = in
		return nil
	})
	if err != nil || len(idle(rt)) != 1 || idle(rt)[0] != small {
		t.Fatalf("a small instance was not kept: %v", err)
	}
	err = rt.with(t.Context(), func(ctx context.Context, in *instance) error {
		grown = in
		var out []byte
		return debugCallOn(ctx, in, false, &out, "vc_debug_grow", 24)
	})
	if err != nil {
		t.Fatal(err)
	}
	if grown != small || len(idle(rt)) != 0 || !grown.mod.IsClosed() {
		t.Fatalf("an instance of %d bytes was kept idle", grown.mem.size())
	}
	works(t, rt)
}

// TestWarmByDefault: under the default Options an instance that decoded
// a 16 MiB message stays warm for the next call; the idle instances stay
// within MaxIdleTotal, past which a returning instance is closed.
func TestWarmByDefault(t *testing.T) {
	a, _ := core.NewArray(core.DTypeUint8, []int{16 << 20}, core.RowMajor, make([]byte, 16<<20))
	msg, err := core.Marshal(map[string]any{"a": a})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(rt *Runtime) {
		t.Helper()
		dec, _ := rt.DecMode(core.DecOptions{})
		if _, err := dec.Decode(msg); err != nil {
			t.Fatal(err)
		}
	}
	rt := newRuntime(t, Options{MaxIdle: 2})
	decode(rt)
	warm := idle(rt)
	if len(warm) != 1 || warm[0].mem.size() <= 16<<20 {
		t.Fatalf("after a 16 MiB decode: %d idle instances", len(warm))
	}
	decode(rt)
	if now := idle(rt); len(now) != 1 || now[0] != warm[0] {
		t.Fatal("the second decode did not reuse the warm instance")
	}
	// A total that holds one grown instance only.
	rt = newRuntime(t, Options{MaxIdle: 2, MaxIdleTotal: int64(warm[0].mem.size()) + 1<<20})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { decode(rt) })
	}
	wg.Wait()
	var total uint64
	for _, in := range idle(rt) {
		total += in.mem.size()
	}
	if n := len(idle(rt)); n > 1 || total > rt.maxIdleTotal {
		t.Fatalf("%d idle instances hold %d bytes, above MaxIdleTotal %d", n, total, rt.maxIdleTotal)
	}
	if _, err := NewRuntime(Options{MaxIdleMemory: 32 << 20, MaxIdleTotal: 16 << 20}); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("MaxIdleTotal below MaxIdleMemory: %v", err)
	}
}

// TestStrictInterrupt: a Runtime whose guest is compiled with wazero's
// checks has an engine of its own and gives the same answers, and a
// context already done still stops a call before the guest runs.
func TestStrictInterrupt(t *testing.T) {
	rt := newRuntime(t, Options{StrictInterrupt: true})
	if rt.eng == newRuntime(t, Options{}).eng {
		t.Fatal("one engine for both: the guest was not compiled with checks")
	}
	works(t, rt)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dec, _ := rt.DecMode(core.DecOptions{})
	msg, _ := core.Marshal(int64(1))
	_, err := dec.DecodeContext(ctx, msg)
	wantKind(t, "decode under a cancelled context", err, core.KindAborted)
	works(t, rt)
}

// TestCancelledBeforeCall: a call whose context is already cancelled
// fails with KindAborted before the guest runs, and its instance, which
// ran nothing, goes back to the pool.
func TestCancelledBeforeCall(t *testing.T) {
	rt := newRuntime(t, Options{MaxIdle: 1})
	works(t, rt)
	warm := idle(rt)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dec, _ := rt.DecMode(core.DecOptions{})
	msg, _ := core.Marshal(int64(1))
	_, err := dec.DecodeContext(ctx, msg)
	wantKind(t, "decode under a cancelled context", err, core.KindAborted)
	if now := idle(rt); len(warm) != 1 || len(now) != 1 || now[0] != warm[0] {
		t.Fatalf("idle instances %v, then %v: the cancelled call broke its instance", warm, now)
	}
}

// TestCacheDir: a cache directory that cannot be made is an error; the
// default lies under the user's cache directory. Without -short (make
// test runs it so, without the race detector, which makes compiling
// twenty times slower): compiled code goes to Options.CacheDir, and
// NoCache compiles without a disk cache.
func TestCacheDir(t *testing.T) {
	if !testing.Short() {
		dir := t.TempDir()
		works(t, newRuntime(t, Options{CacheDir: dir}))
		entries, err := filepath.Glob(filepath.Join(dir, "*", "*"))
		if err != nil || len(entries) == 0 {
			t.Fatalf("nothing cached in %s: %v", dir, err)
		}
		works(t, newRuntime(t, Options{NoCache: true}))
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRuntime(Options{CacheDir: filepath.Join(file, "cache")}); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("a cache directory under a file: %v, want KindInvalid", err)
	}
	if d := defaultCacheDir(); d != "" && filepath.Base(d) != "wazero" {
		t.Errorf("default cache directory %q", d)
	}
}

// TestGuestBuffers: the guest's buffer exports: a freed large buffer
// serves the next allocation of about its size, a small one does not; a
// free of no buffer is a status with its error text, and the instance
// stays sound.
func TestGuestBuffers(t *testing.T) {
	rt := newRuntime(t, Options{})
	err := rt.with(t.Context(), func(ctx context.Context, in *instance) error {
		a, _, err := in.alloc(ctx, 2<<20)
		if err != nil {
			return err
		}
		if err := in.free(ctx, a); err != nil {
			return err
		}
		b, _, err := in.alloc(ctx, 1<<20+1)
		if err != nil {
			return err
		}
		if b != a {
			t.Errorf("a 1 MiB allocation after freeing 2 MiB at %#x got %#x", a, b)
		}
		if err := in.free(ctx, b); err != nil {
			return err
		}
		c, _, err := in.alloc(ctx, 1<<19)
		if err != nil {
			return err
		}
		if c == a {
			t.Errorf("a 512 KiB allocation reused the 2 MiB buffer")
		}
		r, err := in.call(ctx, "vc_free", uint64(c)+1)
		if err != nil {
			return err
		}
		if core.Kind(int32(r)) != core.KindInvalid {
			t.Errorf("free of no buffer: status %d", int32(r))
		}
		ferr := in.lastError(ctx, core.KindInvalid)
		if !strings.Contains(ferr.Error(), "no pinned buffer") {
			t.Errorf("free of no buffer: %v", ferr)
		}
		if in.broken {
			t.Error("a status broke the instance")
		}
		return in.free(ctx, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rt.Version(t.Context()); err != nil || v != core.Version {
		t.Fatalf("version %q, %v; want %q", v, err, core.Version)
	}
}
