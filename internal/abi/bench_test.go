package abi

import (
	"fmt"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi/abitest"
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
		zeroD[i] = abitest.MustArray(b, core.DTypeUint8, []int{}, core.RowMajor, []byte{byte(i)})
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
