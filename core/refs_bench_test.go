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

// manyRefs is a message of n int8 arrays of one element, all by
// reference in one batch: the item-heavy case of issue 25 (a relay's
// worst message per byte).
func manyRefs(b *testing.B, n int) []byte {
	b.Helper()
	refs := make([]any, n)
	for i := range refs {
		refs[i] = &core.Array{DType: core.DTypeInt8, Shape: []int{1}, Data: []byte{byte(i)}}
	}
	em, _ := core.EncOptions{ByRef: true, RefThreshold: 1, Source: "http://127.0.0.1:1"}.EncMode()
	msg, err := em.Marshal(refs)
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// BenchmarkDecodeRefs decodes 200,000 references in pass-through: into
// Go values (a relay), into a binding's skeleton (the C ABI and the wasm
// guest), and that skeleton read back into Go values (the wasm host).
func BenchmarkDecodeRefs(b *testing.B) {
	msg := manyRefs(b, 200_000)
	dm, _ := core.DecOptions{PassThrough: true, MaxElements: 1 << 20}.DecMode()
	skel, _ := core.DecOptions{Slots: true, ZeroCopy: true, MaxElements: 1 << 20, MaxMessageSize: 1 << 30}.DecMode()
	p, err := dm.Skeleton(msg, 4096, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	sk := p.Skeleton.Bytes()
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"Decode", func() error { _, err := dm.Decode(msg); return err }},
		{"Skeleton", func() error { _, err := dm.Skeleton(msg, 4096, 0, nil); return err }},
		{"read-skeleton", func() error { _, err := skel.Decode(sk); return err }},
	} {
		b.Run("200k/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(sk)), "skeleton-B")
		})
	}
}
