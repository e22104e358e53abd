package wasm

import (
	"context"
	"testing"
	"unsafe"
)

// TestReservedMemory: growth keeps the address, stops at the
// reservation, and a Free during a call unmaps only after it.
func TestReservedMemory(t *testing.T) {
	m, ok := newGuestMemory(1 << 30).(*reservedMemory)
	if !ok {
		t.Fatal("no address space reserved")
	}
	b := m.Reallocate(64 << 10)
	b[0] = 7
	c := m.Reallocate(256 << 20)
	if len(c) != 256<<20 || unsafe.SliceData(c) != unsafe.SliceData(b) || c[0] != 7 {
		t.Fatal("growth moved or lost the memory")
	}
	c[len(c)-1] = 1
	if m.Reallocate(1<<30+64<<10) != nil {
		t.Fatal("grew past the reservation")
	}
	if !m.enter() {
		t.Fatal("enter refused")
	}
	m.Free()
	c[len(c)-1] = 2 // mapped still: a guest running here does not crash
	if !m.deferred || m.unmapped {
		t.Fatalf("Free during a call: deferred %v, unmapped %v", m.deferred, m.unmapped)
	}
	m.exit()
	if !m.unmapped {
		t.Fatal("not unmapped once the call ended")
	}
	if m.enter() || m.Reallocate(64<<10) != nil {
		t.Fatal("a freed memory accepts calls or growth")
	}
	m.Free() // twice: harmless
}

// TestViewsSurviveGrowth: a view of guest memory taken before the guest
// grows by 32 MiB still views the same memory after.
func TestViewsSurviveGrowth(t *testing.T) {
	rt := debugRuntime(t, Options{})
	err := rt.with(t.Context(), func(ctx context.Context, in *instance) error {
		before := in.mem.size()
		p, view, err := in.alloc(ctx, 16)
		if err != nil {
			return err
		}
		copy(view, "before growing..")
		var out []byte
		if err := debugCallOn(ctx, in, false, &out, "vc_debug_grow", 32); err != nil {
			return err
		}
		if in.mem.size() < before+32<<20 {
			t.Fatalf("memory grew from %d to %d bytes only", before, in.mem.size())
		}
		copy(view, "after growing...")
		now, ok := in.mod.Memory().Read(p, 16)
		if !ok || unsafe.SliceData(now) != unsafe.SliceData(view) || string(now) != "after growing..." {
			t.Fatalf("the view went stale: %q", now)
		}
		return in.free(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
}
