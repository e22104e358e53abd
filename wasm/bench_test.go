package wasm

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/wasm/internal/guestwasm"
)

// Benchmarks of the wasm host, each beside its native counterpart where
// there is one; docs/benchmarks.md ("wasm") records a run.

// BenchmarkCompile compiles the guest from a warm disk cache and without
// one (cold: what a process without a cache pays once).
func BenchmarkCompile(b *testing.B) {
	guest := guestwasm.Binary()
	ctx := context.Background()
	dir := b.TempDir()
	e, err := newEngine(ctx, guest, dir)
	if err != nil {
		b.Fatal(err)
	}
	e.close()
	for _, c := range []struct{ name, dir string }{{"cache", dir}, {"cold", ""}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				e, err := newEngine(ctx, guest, c.dir)
				if err != nil {
					b.Fatal(err)
				}
				e.close()
			}
		})
	}
}

// BenchmarkInstantiate makes and closes an instance, running the guest's
// _initialize; MiB/instance is the memory of an idle instance.
func BenchmarkInstantiate(b *testing.B) {
	rt := newRuntime(b, Options{})
	var size uint64
	for b.Loop() {
		in, err := newInstance(context.Background(), rt.eng, rt.limit)
		if err != nil {
			b.Fatal(err)
		}
		size = in.mem.size()
		in.close()
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB/instance")
}

// BenchmarkCall is one export call (vc_version) through the pool, with
// close-on-context-done, against a Go function call.
func BenchmarkCall(b *testing.B) {
	rt := newRuntime(b, Options{})
	ctx := context.Background()
	b.Run("guest", func(b *testing.B) {
		for b.Loop() {
			if _, err := rt.Version(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCopy copies 64 MiB into and out of guest memory, against a
// copy between two Go buffers.
func BenchmarkCopy(b *testing.B) {
	const n = 64 << 20
	rt := newRuntime(b, Options{MemoryLimit: 256 << 20})
	src, dst := make([]byte, n), make([]byte, n)
	for i := range src {
		src[i] = byte(i)
	}
	err := rt.with(context.Background(), func(ctx context.Context, in *instance) error {
		p, view, err := in.alloc(ctx, n)
		if err != nil {
			return err
		}
		for _, c := range []struct {
			name     string
			dst, src []byte
		}{{"memcpy", dst, src}, {"into-guest", view, src}, {"out-of-guest", dst, view}} {
			b.Run(c.name, func(b *testing.B) {
				b.SetBytes(n)
				for b.Loop() {
					copy(c.dst, c.src)
				}
			})
		}
		return in.free(ctx, p)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// tensors returns a model of n float32 tensors of about total bytes.
func tensors(b *testing.B, n, total int) map[string]any {
	elems := total / n / 4
	m := make(map[string]any, n)
	for i := range n {
		data := make([]byte, elems*4)
		for j := range data {
			data[j] = byte(i + j)
		}
		a, err := core.NewArray(core.DTypeFloat32, []int{elems}, core.RowMajor, data)
		if err != nil {
			b.Fatal(err)
		}
		m[fmt.Sprintf("layer%04d", i)] = a
	}
	return m
}

// BenchmarkDecode decodes inline messages end to end, natively and in the
// guest: 64 MiB in 100 tensors, and 1000 small tensors (where the plan
// dominates). Arrays are copied (no ZeroCopy) both ways.
func BenchmarkDecode(b *testing.B) {
	rt := newRuntime(b, Options{MemoryLimit: 256 << 20, MaxIdleMemory: 256 << 20})
	for _, c := range []struct {
		name     string
		n, total int
	}{{"64MiB-100", 100, 64 << 20}, {"1000-tensors", 1000, 4 << 20}} {
		msg, err := core.Marshal(tensors(b, c.n, c.total))
		if err != nil {
			b.Fatal(err)
		}
		native, _ := core.DecOptions{}.DecMode()
		guest, err := rt.DecMode(core.DecOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []struct {
			name string
			dec  Decoder
		}{{"native", native}, {"wasm", guest}} {
			b.Run(c.name+"/"+m.name, func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					if _, err := m.dec.Decode(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkEncode encodes 64 MiB in 100 tensors inline, natively and in
// the guest (which copies the arrays in and the message out).
func BenchmarkEncode(b *testing.B) {
	rt := newRuntime(b, Options{MemoryLimit: 512 << 20, MaxIdleMemory: 512 << 20})
	v := tensors(b, 100, 64<<20)
	native, _ := core.EncOptions{}.EncMode()
	guest, err := rt.EncMode(core.EncOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name string
		enc  Encoder
	}{{"native", native}, {"wasm", guest}} {
		b.Run("64MiB-100/"+m.name, func(b *testing.B) {
			b.SetBytes(64 << 20)
			for b.Loop() {
				if _, err := m.enc.Marshal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGrow grows a fresh instance's memory to 1 GiB in 16 MiB
// steps, as a guest allocating grows it: with this package's reserving
// allocator (pages are touched only when the guest uses them) and with
// wazero's default, which reallocates, zeroes and copies.
func BenchmarkGrow(b *testing.B) {
	rt := newRuntime(b, Options{MemoryLimit: 2 << 30})
	ctx := context.Background()
	for _, reserved := range []bool{true, false} {
		name := "reserved"
		if !reserved {
			name = "wazero-default"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				ctx := ctx
				if reserved {
					ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
						return newGuestMemory(min(max, rt.limit))
					}))
				}
				mod, err := rt.eng.rt.InstantiateModule(ctx, rt.eng.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
				if err != nil {
					b.Fatal(err)
				}
				mem := mod.Memory()
				for mem.Size() < 1<<30 {
					if _, ok := mem.Grow(256); !ok {
						b.Fatalf("grow at %d bytes failed", mem.Size())
					}
				}
				mod.Close(ctx)
			}
		})
	}
}
