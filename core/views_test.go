package core

import "testing"

// TestViews: one number per view of memory; another length, dtype, shape
// or order from the same first byte is another view, found again however
// many start there.
func TestViews(t *testing.T) {
	mem := make([]byte, 64)
	mk := func(dt DType, shape []int, o Order, data []byte) *Array {
		a, err := NewArray(dt, shape, o, data)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	f32 := mk(DTypeFloat32, []int{16}, RowMajor, mem)
	views := []*Array{
		f32,
		mk(DTypeFloat32, []int{4, 4}, RowMajor, mem),    // another shape
		mk(DTypeFloat32, []int{4, 4}, ColumnMajor, mem), // another order
		mk(DTypeUint32, []int{16}, RowMajor, mem),       // another dtype
		mk(DTypeFloat32, []int{8}, RowMajor, mem[:32]),  // another length
		mk(DTypeFloat32, []int{8}, RowMajor, mem[32:]),  // another first byte
	}
	var v Views
	for i, a := range views {
		if n, added := v.Add(a); n != i || !added {
			t.Fatalf("view %d: got %d, added %v", i, n, added)
		}
	}
	for i, a := range views {
		again := mk(a.DType, append([]int(nil), a.Shape...), a.Order, a.Data) // equal, not the same *Array
		if n, added := v.Add(again); n != i || added {
			t.Errorf("view %d again: got %d, added %v", i, n, added)
		}
	}
}
