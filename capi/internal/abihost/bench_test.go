package abihost

import (
	"context"
	"fmt"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

// BenchmarkHostEncode: the Go half of a binding's Host.dumps of a model in
// 1000 arrays, all by reference.
func BenchmarkHostEncode(b *testing.B) {
	h, err := NewHost(HostOptions{RefThreshold: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { h.Cancel(); h.Close() }()
	model := map[string]any{}
	var slots []abi.Slot
	for i := range 1000 {
		a := abitest.MustArray(b, core.DTypeFloat32, []int{64 << 10}, core.RowMajor, make([]byte, 256<<10))
		model[fmt.Sprintf("layer%04d", i)] = core.SlotIndex(i)
		slots = append(slots, abi.SlotOf(a))
	}
	skel := abitest.Skeleton(b, map[string]any{"model": model})
	for b.Loop() {
		msg, tx, err := h.Encode(context.Background(), skel, slots, PublishOptions{Receivers: 1})
		if err != nil {
			b.Fatal(err)
		}
		_ = msg.Bytes()
		tx.Abort()
	}
}
