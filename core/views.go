// For the encoders of core and of the wasm host; Go users do not need
// this file.

package core

import "slices"

// Views numbers the distinct views of memory among arrays, so that each
// is sent as one batch item: arrays that start at the same byte and have
// the same length, dtype, order and shape are one view. Another length,
// dtype, order or shape from the same first byte is another view. The
// zero Views is ready to use.
type Views struct {
	first map[uintptr]int // first byte → the first view that starts there
	views []view
}

type view struct {
	a    *Array
	next int // the next view with the same first byte, or -1
}

// Add returns the number of a's view (0, 1, ... in order of first
// appearance) and whether it was new.
func (v *Views) Add(a *Array) (n int, added bool) {
	key := uintptr(unsafePointer(a.Data))
	n, ok := v.first[key]
	last := -1
	for ok {
		b := v.views[n].a
		if len(b.Data) == len(a.Data) && b.DType == a.DType && b.Order == a.Order && slices.Equal(b.Shape, a.Shape) {
			return n, false
		}
		last, n = n, v.views[n].next
		ok = n >= 0
	}
	n = len(v.views)
	v.views = append(v.views, view{a, -1})
	if last >= 0 {
		v.views[last].next = n
	} else {
		if v.first == nil {
			v.first = make(map[uintptr]int, 64)
		}
		v.first[key] = n
	}
	return n, true
}
