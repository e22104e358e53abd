package wasm

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// putString copies s into a fresh guest buffer of in and returns its
// address; the buffer is freed when the test ends with the instance.
func putString(ctx context.Context, in *instance, s string) (uint64, error) {
	p, buf, err := in.alloc(ctx, uint64(len(s)))
	if err != nil {
		return 0, err
	}
	copy(buf, s)
	return uint64(p), nil
}

// TestSandbox: the guest cannot read or create a file, list a directory
// or open a socket, even to a listener on loopback, and sees no
// environment or arguments.
func TestSandbox(t *testing.T) {
	rt := debugRuntime(t, Options{})
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("host data"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIACODEC_SANDBOX_PROBE", "host environment")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	var report []byte
	err = rt.with(t.Context(), func(ctx context.Context, in *instance) error {
		path, err := putString(ctx, in, secret)
		if err != nil {
			return err
		}
		addr, err := putString(ctx, in, ln.Addr().String())
		if err != nil {
			return err
		}
		return debugCallOn(ctx, in, true, &report, "vc_debug_sandbox", path, uint64(len(secret)), addr, uint64(len(ln.Addr().String())))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the guest reports:\n%s", report)
	for _, line := range []string{"read: error", "create: error", "readdir: error", "dial: error", "env: 0\n", "args: 0\n"} {
		if !bytes.Contains(report, []byte(line)) {
			t.Errorf("the guest's report lacks %q", line)
		}
	}
	if _, err := os.Stat("viacodec-sandbox-probe"); err == nil {
		os.Remove("viacodec-sandbox-probe")
		t.Error("the guest created a file in the host's directory")
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("the guest connected to the loopback listener")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestRandomness: two instances draw different bytes from crypto/rand:
// the guest's randomness is real, not the runtime's fixed default.
func TestRandomness(t *testing.T) {
	rt := debugRuntime(t, Options{MaxIdle: -1})
	var a, b []byte
	err := rt.with(t.Context(), func(ctx context.Context, first *instance) error {
		if err := debugCallOn(ctx, first, true, &a, "vc_debug_random", 32); err != nil {
			return err
		}
		// A second instance while the first is held.
		return rt.with(ctx, func(ctx context.Context, second *instance) error {
			if second == first {
				t.Fatal("two callers share an instance")
			}
			return debugCallOn(ctx, second, true, &b, "vc_debug_random", 32)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || len(b) != 32 || bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
		t.Fatalf("two instances drew %x and %x", a, b)
	}
}

// TestClock: the guest's clock is real: a 50 ms sleep in the guest takes
// at least 50 ms of the host's wall time.
func TestClock(t *testing.T) {
	rt := debugRuntime(t, Options{})
	if _, err := debugCall(t.Context(), rt, false, "vc_debug_sleep", 1); err != nil { // instantiate first
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := debugCall(t.Context(), rt, false, "vc_debug_sleep", 50); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("a 50 ms sleep in the guest took %v", d)
	}
}
