package core_test

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

// The benchmarks model a checkpoint: tensorsPerModel float32 tensors that
// together hold a model's bytes. Every benchmark reports its throughput over
// those array bytes (b.SetBytes), so that its ns/op divides directly by the
// memcpy of the same bytes, measured in the same run by BenchmarkMemcpy.
// docs/benchmarks.md records the results and the targets they are held to.

const (
	tensorsPerModel = 100
	tensorCols      = 1024 // every tensor is [rows, 1024] float32
)

// benchModel is one synthetic model, built on first use and then shared by
// every benchmark in the process, so that the 256 MiB inputs exist once.
type benchModel struct {
	name  string
	bytes int // total array bytes

	once sync.Once
	raw  []byte         // the tensors' bytes, back to back: the memcpy source
	body map[string]any // tensor name -> *core.Array viewing raw
	msg  []byte         // core.Marshal(body)
}

// benchModels are the inputs of every benchmark, smallest first. Both have
// the same number of tensors, so a cost that depends only on the tensor
// count is the same for both, and one that depends on the bytes is 16×.
var benchModels = []*benchModel{
	{name: "16MiB", bytes: 16 << 20},
	{name: "256MiB", bytes: 256 << 20},
}

// get builds the model on first call. The data is written element by
// element, which also faults its pages in before any timing starts.
func (m *benchModel) get(b *testing.B) *benchModel {
	b.Helper()
	m.once.Do(func() {
		elems := make([]float32, m.bytes/4)
		for i := range elems {
			elems[i] = float32(i%4093) * 0.25
		}
		m.raw = unsafe.Slice((*byte)(unsafe.Pointer(&elems[0])), m.bytes)

		rows := len(elems) / tensorCols
		m.body = make(map[string]any, tensorsPerModel)
		for t := range tensorsPerModel {
			lo, hi := rows*t/tensorsPerModel, rows*(t+1)/tensorsPerModel
			a, err := core.ArrayOf([]int{hi - lo, tensorCols}, elems[lo*tensorCols:hi*tensorCols])
			if err != nil {
				panic(fmt.Sprintf("ArrayOf: %v", err))
			}
			m.body[fmt.Sprintf("layers.%02d.weight", t)] = a
		}
		msg, err := core.Marshal(m.body)
		if err != nil {
			panic(fmt.Sprintf("Marshal: %v", err))
		}
		m.msg = msg
	})
	if m.msg == nil {
		b.Fatal("model inputs failed to build in an earlier benchmark")
	}
	return m
}

// BenchmarkMemcpy is the yardstick: a copy of the model's bytes into a
// destination that is reused (already faulted in) and into one allocated
// afresh each time, as a decoder or Marshal must.
func BenchmarkMemcpy(b *testing.B) {
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := bm.get(b)
			b.Run("reused", func(b *testing.B) {
				dst := make([]byte, len(m.raw))
				copy(dst, m.raw) // fault dst in before timing
				b.SetBytes(int64(m.bytes))
				b.ReportAllocs()
				for b.Loop() {
					copy(dst, m.raw)
				}
			})
			b.Run("fresh", func(b *testing.B) {
				b.SetBytes(int64(m.bytes))
				b.ReportAllocs()
				for b.Loop() {
					_ = append([]byte(nil), m.raw...)
				}
			})
		})
	}
}

// BenchmarkEncode encodes the model with its arrays inline.
func BenchmarkEncode(b *testing.B) {
	em, err := core.EncOptions{}.EncMode()
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := bm.get(b)
			// Marshal: the whole message in a new slice.
			b.Run("Marshal", func(b *testing.B) {
				b.SetBytes(int64(m.bytes))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := core.Marshal(m.body); err != nil {
						b.Fatal(err)
					}
				}
			})
			// AppendTo: Encode, then assemble into a buffer kept across
			// messages (faulted in by one encode before timing).
			b.Run("AppendTo-reused", func(b *testing.B) {
				buf := encodeAppend(b, em, m.body, nil)
				b.SetBytes(int64(m.bytes))
				b.ReportAllocs()
				for b.Loop() {
					buf = encodeAppend(b, em, m.body, buf[:0])
				}
			})
			// WriteTo(io.Discard): Encode and walk the parts with no copy; the
			// cost a streaming writer adds before its own I/O.
			b.Run("WriteTo-discard", func(b *testing.B) {
				b.SetBytes(int64(m.bytes))
				b.ReportAllocs()
				for b.Loop() {
					msg, err := em.Encode(m.body)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := msg.WriteTo(io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func encodeAppend(b *testing.B, em *core.EncMode, v any, dst []byte) []byte {
	msg, err := em.Encode(v)
	if err != nil {
		b.Fatal(err)
	}
	return msg.AppendTo(dst)
}

// BenchmarkDecode decodes the model's message, copying the arrays
// (Unmarshal) and aliasing them (ZeroCopy). Zero-copy should cost the same
// at both model sizes.
func BenchmarkDecode(b *testing.B) {
	zc, err := core.DecOptions{ZeroCopy: true}.DecMode()
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range benchModels {
		b.Run(bm.name, func(b *testing.B) {
			m := bm.get(b)
			b.Run("Unmarshal-copy", func(b *testing.B) {
				checkDecoded(b, m, core.Unmarshal)
				b.SetBytes(int64(m.bytes))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := core.Unmarshal(m.msg); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("ZeroCopy", func(b *testing.B) {
				checkDecoded(b, m, zc.Decode)
				b.SetBytes(int64(m.bytes))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := zc.Decode(m.msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// checkDecoded decodes m.msg once, before timing, and checks that it gives
// back every tensor, so that the benchmark measures a decode that works.
func checkDecoded(b *testing.B, m *benchModel, decode func([]byte) (any, error)) {
	b.Helper()
	v, err := decode(m.msg)
	if err != nil {
		b.Fatal(err)
	}
	body, ok := v.(map[string]any)
	if !ok || len(body) != tensorsPerModel {
		b.Fatalf("decoded %T with %d entries, want map[string]any with %d", v, len(body), tensorsPerModel)
	}
	n := 0
	for k, x := range body {
		a, ok := x.(*core.Array)
		if !ok || a.DType != core.DTypeFloat32 {
			b.Fatalf("%s decoded as %T, want a float32 *core.Array", k, x)
		}
		n += len(a.Data)
	}
	if n != m.bytes {
		b.Fatalf("decoded %d array bytes, want %d", n, m.bytes)
	}
}
