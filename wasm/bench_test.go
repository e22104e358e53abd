package wasm

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/internal/arraytest"
	"github.com/viacodec/viacodec/internal/cputime"
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
	e, err := newEngine(ctx, guest, dir, false)
	if err != nil {
		b.Fatal(err)
	}
	e.close()
	for _, c := range []struct{ name, dir string }{{"cache", dir}, {"cold", ""}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				e, err := newEngine(ctx, guest, c.dir, false)
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

// BenchmarkCall is one export call (vc_version) through the pool under
// the default Options.
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

// BenchmarkDownloadByRef downloads a model of 256 MiB in 32 float32
// tensors, sent by reference, over loopback HTTP, into memory faulted in
// beforehand, and compares each sandboxed way with the native one in the
// same iterations. The native way has a hostdl.Host with core's table
// for a source and a native receiver. The others:
//
//   - wasm-source: the source's table lives in a guest (Runtime.NewTable)
//     and the model was encoded by reference in a guest; the guest grants
//     each range the receiver asks for, and the host writes it from the
//     source's memory;
//   - wasm-receiver: the receiver decodes in a guest (the guest plans,
//     the host downloads);
//   - wasm-both: both.
//
// Each iteration downloads the model both ways, in turns (which goes
// first alternates), so that a busy machine weighs on both alike: MB/s is
// the sandboxed way's throughput, native-MB/s the native one's, x-native
// their ratio (ns/op covers both downloads). Both sources checksummed the
// model before the timing starts.
func BenchmarkDownloadByRef(b *testing.B) {
	const size, n = 256 << 20, 32
	rt := newRuntime(b, Options{})
	model := tensors(b, n, size)
	dst := make([]byte, size)
	for i := 0; i < len(dst); i += 4096 {
		dst[i] = 1
	}
	rcv, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: hostdl.ClientOptions{Receiver: "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	defer rcv.Close()
	publish := core.PublishOptions{MaxReceivers: 1 << 20, Timeout: 24 * time.Hour}

	native, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer native.Close()
	nenc, _ := native.EncMode(core.EncOptions{})
	nm, err := nenc.Encode(model)
	if err != nil {
		b.Fatal(err)
	}
	nm.Batch().Manifest() // checksum once, before any timing
	if _, err := native.Publish(nm.Batch(), publish); err != nil {
		b.Fatal(err)
	}

	src, table := guestHost(b, rt, hostdl.HostOptions{})
	genc, err := rt.EncMode(core.EncOptions{ByRef: true, Source: src.Source()})
	if err != nil {
		b.Fatal(err)
	}
	gm, err := genc.Encode(model)
	if err != nil {
		b.Fatal(err)
	}
	gm.Batch().Manifest()
	if _, err := table.Publish(gm.Batch(), publish); err != nil {
		b.Fatal(err)
	}

	// download decodes msg natively or in the guest, and returns the time
	// it took.
	download := func(b *testing.B, msg []byte, inGuest bool) time.Duration {
		start := time.Now()
		var dec Decoder
		var err error
		o := core.DecOptions{Allocator: arraytest.Arena(dst)}
		if inGuest {
			o.Fetcher = rcv.Client()
			dec, err = rt.DecMode(o)
		} else {
			dec, err = rcv.DecMode(o)
		}
		if err == nil {
			_, err = dec.Decode(msg)
		}
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for _, c := range []struct {
		name    string
		msg     []byte
		inGuest bool
	}{
		{"wasm-source", gm.Bytes(), false},
		{"wasm-receiver", nm.Bytes(), true},
		{"wasm-both", gm.Bytes(), true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var tn, tw time.Duration
			iters := 0
			for b.Loop() {
				if iters%2 == 0 {
					tn += download(b, nm.Bytes(), false)
					tw += download(b, c.msg, c.inGuest)
				} else {
					tw += download(b, c.msg, c.inGuest)
					tn += download(b, nm.Bytes(), false)
				}
				iters++
			}
			mb := float64(size) * float64(iters) / 1e6
			b.ReportMetric(mb/tw.Seconds(), "MB/s")
			b.ReportMetric(mb/tn.Seconds(), "native-MB/s")
			b.ReportMetric(tn.Seconds()/tw.Seconds(), "x-native")
		})
	}
}

// BenchmarkTableServe is one Serve of 8 bytes and its release, the
// bookkeeping of each range a source serves: on core's table, and on a
// table in a guest (a call into the guest that grants it).
func BenchmarkTableServe(b *testing.B) {
	rt := newRuntime(b, Options{})
	guest, err := rt.NewTable(core.TableOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer guest.Close()
	native, _ := core.NewTable(core.TableOptions{})
	batch := batchOf(b, rt, 1)
	if _, err := native.Publish(batch, core.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := guest.Publish(batch, core.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	ref := batch.Ref
	for _, c := range []struct {
		name  string
		table hostdl.Table
	}{{"native", native}, {"wasm", guest}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				_, release, err := c.table.ServeVia(ref.RefID, ref.Token[:], "r", "", 0, 0, 8)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

// itemHeavy returns messages of many small items: 1 Mi small integers
// (1 MiB), 200,000 references and 200,000 0-d arrays.
func itemHeavy(b *testing.B) []struct {
	name string
	msg  []byte
} {
	ints := make([]any, 1<<20)
	for i := range ints {
		ints[i] = int64(i % 24)
	}
	refs := make([]any, 200_000)
	zeroD := make([]any, 200_000)
	for i := range refs {
		refs[i] = &core.Array{DType: core.DTypeInt8, Shape: []int{1}, Data: []byte{byte(i)}}
		zeroD[i] = &core.Array{DType: core.DTypeInt8, Shape: []int{}, Data: []byte{byte(i)}}
	}
	byRef, _ := core.EncOptions{ByRef: true, RefThreshold: 1, Source: "http://127.0.0.1:1"}.EncMode()
	out := []struct {
		name string
		msg  []byte
	}{{"1Mi-ints", nil}, {"200k-refs", nil}, {"200k-0d-arrays", nil}}
	var err error
	if out[0].msg, err = core.Marshal(ints); err == nil {
		if out[1].msg, err = byRef.Marshal(refs); err == nil {
			out[2].msg, err = core.Marshal(zeroD)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkDecodeItems decodes messages of many small items natively and
// in the guest (references stay lazy: pass-through), under the default
// Options (wasm) and with Options.StrictInterrupt (wasm-strict), in a
// guest of 256 MiB: 200,000 references are a skeleton of tens of MiB.
// cpu-ms/op is the process's CPU time per decode (both cores).
func BenchmarkDecodeItems(b *testing.B) {
	o := core.DecOptions{PassThrough: true, MaxElements: 1 << 21}
	native, _ := o.DecMode()
	guest, err := newRuntime(b, Options{MemoryLimit: 256 << 20}).DecMode(o)
	if err != nil {
		b.Fatal(err)
	}
	strict, err := newRuntime(b, Options{MemoryLimit: 256 << 20, StrictInterrupt: true}).DecMode(o)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range itemHeavy(b) {
		for _, m := range []struct {
			name string
			dec  Decoder
		}{{"native", native}, {"wasm", guest}, {"wasm-strict", strict}} {
			b.Run(c.name+"/"+m.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.msg)))
				cpu := cputime.Process()
				for b.Loop() {
					if _, err := m.dec.Decode(c.msg); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cputime.Process()-cpu)/1e6/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// hostileCase is a message of 1 MiB built to cost a decoder the most per
// byte, and the options it is decoded with.
type hostileCase struct {
	name string
	msg  []byte
	opts core.DecOptions
}

// hostileMiB returns messages of at most 1 MiB (issue 25: each may cost at
// most about a second of guest CPU): hostileOf(t, 1 MiB).
func hostileMiB(t testing.TB) []hostileCase { return hostileOf(t, 1<<20) }

// hostileOf returns messages of at most size bytes: as many references,
// arrays, nested lists, map keys and strings as fit. The references are
// decoded in pass-through (a relay) and planned for download (a receiver
// without a Fetcher: refused once planned).
func hostileOf(t testing.TB, size int) []hostileCase {
	// fit builds the message of the most items that fits in size.
	fit := func(build func(n int) []byte) []byte {
		n := 1000 * (size - 64) / len(build(1000))
		for {
			if b := build(n); len(b) <= size {
				return b
			}
			n -= n/100 + 1
		}
	}
	arrays := func(o core.EncOptions, shape []int) func(int) []byte {
		return func(n int) []byte {
			list := make([]any, n)
			for i := range list {
				list[i] = &core.Array{DType: core.DTypeUint8, Shape: shape, Data: []byte{7}} // one element
			}
			return mustMarshal(t, o, list)
		}
	}
	byRef := core.EncOptions{ByRef: true, RefThreshold: 1, Source: "http://127.0.0.1:1"}
	refs := fit(arrays(byRef, []int{1}))
	return []hostileCase{
		{"refs", refs, core.DecOptions{PassThrough: true}},
		{"refs-planned", refs, core.DecOptions{}},
		{"0d-arrays", fit(arrays(core.EncOptions{}, []int{})), core.DecOptions{}},
		{"1-element-arrays", fit(arrays(core.EncOptions{}, []int{1})), core.DecOptions{}},
		{"nested-lists", fit(func(n int) []byte { // lists 127 deep, side by side
			chain := append(bytes.Repeat([]byte{0x81}, core.DefaultMaxDepth-1), 0x00)
			return envelope(append(head(nil, 4, uint64(n)), bytes.Repeat(chain, n)...))
		}), core.DecOptions{}},
		{"map-text-keys", fit(func(n int) []byte { // 3 letters each, in reverse order
			const abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			m := head(nil, 5, uint64(n))
			for i := n - 1; i >= 0; i-- {
				m = append(m, 0x63, abc[i%62], abc[i/62%62], abc[i/62/62%62], 0x00)
			}
			return envelope(m)
		}), core.DecOptions{}},
		{"map-int-keys", fit(func(n int) []byte {
			m := head(nil, 5, uint64(n))
			for i := range n {
				m = append(head(m, 0, uint64(i)), 0x00)
			}
			return envelope(m)
		}), core.DecOptions{}},
		{"short-strings", fit(func(n int) []byte {
			return envelope(append(head(nil, 4, uint64(n)), bytes.Repeat([]byte{0x41, 0x07}, n)...))
		}), core.DecOptions{}},
	}
}

// BenchmarkDecodeHostile decodes the messages of hostileMiB natively and
// in the guest under the default Options (64 MiB guests): cpu-ms/op is
// the process's CPU time per decode, the cost issue 25 bounds to about a
// second. Native and guest give the same answer (a refusal included).
func BenchmarkDecodeHostile(b *testing.B) {
	rt := newRuntime(b, Options{})
	for _, c := range hostileMiB(b) {
		native, err := c.opts.DecMode()
		if err != nil {
			b.Fatal(err)
		}
		guest, err := rt.DecMode(c.opts)
		if err != nil {
			b.Fatal(err)
		}
		_, nerr := native.Decode(c.msg)
		for _, m := range []struct {
			name string
			dec  Decoder
		}{{"native", native}, {"wasm", guest}} {
			b.Run(c.name+"/"+m.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.msg)))
				cpu := cputime.Process()
				for b.Loop() {
					if _, err := m.dec.Decode(c.msg); core.KindOf(err) != core.KindOf(nerr) {
						b.Fatalf("%v; natively %v", err, nerr)
					}
				}
				b.ReportMetric(float64(cputime.Process()-cpu)/1e6/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// BenchmarkDecodeWarm decodes a 16 MiB message in 16 tensors under the
// default Options, natively and in the guest: every call after the first
// finds a warm instance in the pool.
func BenchmarkDecodeWarm(b *testing.B) {
	rt := newRuntime(b, Options{})
	msg, err := core.Marshal(tensors(b, 16, 16<<20))
	if err != nil {
		b.Fatal(err)
	}
	native, _ := core.DecOptions{}.DecMode()
	guest, _ := rt.DecMode(core.DecOptions{})
	for _, m := range []struct {
		name string
		dec  Decoder
	}{{"native", native}, {"wasm", guest}} {
		b.Run("16MiB-16/"+m.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := m.dec.Decode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
