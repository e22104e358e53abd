// Package arraytest makes the arrays and allocators that tests of the
// packages above core share: every dtype, arrays of random bits, and an
// arena allocator.
package arraytest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/viacodec/viacodec/core"
)

// DTypes returns every dtype of the core, in a new slice.
func DTypes() []core.DType {
	return []core.DType{
		core.DTypeBool, core.DTypeInt8, core.DTypeInt16, core.DTypeInt32, core.DTypeInt64,
		core.DTypeUint8, core.DTypeUint16, core.DTypeUint32, core.DTypeUint64,
		core.DTypeFloat16, core.DTypeBFloat16, core.DTypeFloat32, core.DTypeFloat64,
		core.DTypeComplex64, core.DTypeComplex128, core.DTypeFloat8E4M3FN, core.DTypeFloat8E5M2,
	}
}

// Random returns an array of random bits from rng (NaN payloads,
// subnormals, -0 and all), bools 0 or 1. It takes one rng.Uint32 a byte.
func Random(t testing.TB, rng *rand.Rand, dt core.DType, shape []int, order core.Order) *core.Array {
	t.Helper()
	n := dt.Size()
	for _, d := range shape {
		n *= d
	}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
		if dt == core.DTypeBool {
			data[i] &= 1
		}
	}
	a, err := core.NewArray(dt, shape, order, data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Arena returns an allocator that hands out consecutive slices of buf (a
// final consumer's own memory, already faulted in), safe for concurrent
// use; once buf is used up it fails.
func Arena(buf []byte) core.Allocator {
	var mu sync.Mutex
	off := int64(0)
	return func(_ core.DType, _ []int, _ core.Order, n int64) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if off+n > int64(len(buf)) {
			return nil, fmt.Errorf("arena of %d bytes exhausted", len(buf))
		}
		off += n
		return buf[off-n : off : off], nil
	}
}
