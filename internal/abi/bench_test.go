package abi

import (
	"fmt"
	"testing"

	"github.com/viacodec/viacodec/core"
)

// BenchmarkDecode: the Go half of a binding's loads of many small values
// (docs/benchmarks.md, "Python"): the message planned and written as a
// skeleton.
func BenchmarkDecode(b *testing.B) {
	metrics := map[string]any{}
	for i := range 50_000 {
		if i%2 == 1 {
			metrics[fmt.Sprintf("metric/%05d", i)] = float64(i) * 0.25
		} else {
			metrics[fmt.Sprintf("metric/%05d", i)] = int64(i)
		}
	}
	zeroD := make([]any, 100_000)
	for i := range zeroD {
		zeroD[i] = mustArray(b, core.DTypeUint8, []int{}, core.RowMajor, []byte{byte(i)})
	}
	for _, c := range []struct {
		name  string
		value any
	}{{"50k-metrics", metrics}, {"100k-0d-arrays", zeroD}} {
		msg, err := core.Marshal(c.value)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := Decode(msg, DecOptions{ArraySlotMin: 4096, BytesSlotMin: 64 << 10}, false, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHostEncode: the Go half of a binding's Host.dumps of a model in
// 1000 arrays, all by reference.
func BenchmarkHostEncode(b *testing.B) {
	h, err := NewHost(HostOptions{RefThreshold: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { h.Cancel(); h.Close() }()
	model := map[string]any{}
	var slots []Slot
	for i := range 1000 {
		a := mustArray(b, core.DTypeFloat32, []int{64 << 10}, core.RowMajor, make([]byte, 256<<10))
		model[fmt.Sprintf("layer%04d", i)] = core.SlotIndex(i)
		slots = append(slots, slotOf(a))
	}
	skel := skeleton(b, map[string]any{"model": model})
	for b.Loop() {
		msg, tx, err := h.Encode(skel, slots, PublishOptions{Receivers: 1})
		if err != nil {
			b.Fatal(err)
		}
		_ = msg.Bytes()
		tx.Abort()
	}
}
