package core_test

import (
	"fmt"
	"testing"

	"github.com/viacodec/viacodec/core"
)

// refModel is 1000 float32 tensors over one buffer of the given size. The
// buffer is never written: encoding by reference must not touch it.
func refModel(b *testing.B, size int) map[string]any {
	b.Helper()
	const tensors = 1000
	buf := make([]byte, size)
	per := size / tensors / 4 * 4
	m := make(map[string]any, tensors)
	for t := range tensors {
		a, err := core.NewArray(core.DTypeFloat32, []int{per / 4}, core.RowMajor, buf[t*per:(t+1)*per])
		if err != nil {
			b.Fatal(err)
		}
		m[fmt.Sprintf("layers.%03d.weight", t)] = a
	}
	return m
}

var refSizes = []struct {
	name string
	size int
}{{"1000x16KiB", 16 << 20}, {"1000x1MiB", 1 << 30}}

// BenchmarkEncodeByRef encodes 1000 tensors by reference: its time and
// allocations must not depend on the array bytes.
func BenchmarkEncodeByRef(b *testing.B) {
	em, err := core.EncOptions{ByRef: true, RefThreshold: 1024, Source: "http://127.0.0.1:1"}.EncMode()
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range refSizes {
		b.Run(s.name, func(b *testing.B) {
			model := refModel(b, s.size)
			b.ReportAllocs()
			for b.Loop() {
				msg, err := em.Encode(model)
				if err != nil {
					b.Fatal(err)
				}
				if msg.Batch() == nil || len(msg.Batch().Items) != 1000 {
					b.Fatal("wrong batch")
				}
				_ = msg.Bytes()
			}
			b.ReportMetric(float64(s.size), "array-B")
		})
	}
}

// BenchmarkRelay is a forwarding hop: pass-through decode and re-encode.
// Bytes allocated per op must not depend on the array bytes.
func BenchmarkRelay(b *testing.B) {
	em, _ := core.EncOptions{ByRef: true, RefThreshold: 1024, Source: "http://127.0.0.1:1"}.EncMode()
	dm, _ := core.DecOptions{PassThrough: true}.DecMode()
	for _, s := range refSizes {
		b.Run(s.name, func(b *testing.B) {
			data, err := em.Marshal(refModel(b, s.size))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				v, err := dm.Decode(data)
				if err != nil {
					b.Fatal(err)
				}
				out, err := core.Marshal(v)
				if err != nil || len(out) != len(data) {
					b.Fatal("re-encoded message differs in size", err)
				}
			}
			b.ReportMetric(float64(s.size), "array-B")
		})
	}
}

// BenchmarkManifest computes the manifest of a fresh 1 GiB batch (1000
// items), as a source does when it publishes, against core.Checksum of
// the same 1 MiB blocks one after the other. The buffer is far larger
// than any cache, so both read cold memory; -cpu 1,2 shows the manifest
// with one goroutine and with two.
func BenchmarkManifest(b *testing.B) {
	mode, err := core.EncOptions{ByRef: true, RefThreshold: 1, Source: "http://127.0.0.1:1"}.EncMode()
	if err != nil {
		b.Fatal(err)
	}
	msg, err := mode.Encode(refModel(b, 1<<30))
	if err != nil {
		b.Fatal(err)
	}
	items := msg.Batch().Items
	var total int64
	for _, it := range items {
		for i := range it.Data {
			it.Data[i] = byte(i) // pages of their own, not the shared zero page
		}
		total += int64(len(it.Data))
	}
	b.Run("Checksum", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			for _, it := range items {
				for off := 0; off < len(it.Data); off += core.DefaultBlockSize {
					core.Checksum(it.Data[off:min(off+core.DefaultBlockSize, len(it.Data))])
				}
			}
		}
	})
	b.Run("Manifest", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			(&core.Batch{Ref: msg.Batch().Ref, Items: items}).Manifest()
		}
	})
}
