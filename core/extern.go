package core

import (
	"slices"
)

// Extern is an array whose bytes the encoding process does not hold: a
// wasm guest encodes by reference the arrays its host keeps, from their
// descriptions alone, so that no array byte enters the guest. Encode
// writes an Extern as a ref node, with EncOptions.ByRef only (whatever its
// size: it has no bytes to write inline). Its batch item has no Data and
// points back to it (Item.Extern); the holder of the bytes serves them and
// computes their manifest, and a Table grants the requests for them
// (GrantManifest, GrantServe).
type Extern struct {
	DType DType
	Shape []int
	Order Order
	// Handle is the holder's name for the bytes (a wasm host's index of
	// the array); core carries it and never reads it.
	Handle int64
}

// Size returns the array's byte length, or an error when its dtype, order
// or shape is invalid.
func (x *Extern) Size() (int64, error) {
	if x == nil {
		return 0, errorf(KindInvalid, "nil *Extern")
	}
	if !x.DType.Valid() || x.Order > ColumnMajor {
		return 0, errorf(KindMismatch, "extern array of dtype %d, order %d", uint8(x.DType), uint8(x.Order))
	}
	return ByteLen(x.DType, x.Shape)
}

// Size returns the item's byte length: that of its Data, or of its Extern
// array.
func (it *Item) Size() int64 {
	if it.Extern != nil {
		n, _ := it.Extern.Size() // checked when the item was made
		return n
	}
	return int64(len(it.Data))
}

// encodeExtern adds x to this hop's batch (once per *Extern) and writes a
// ref node.
func (e *encoder) encodeExtern(x *Extern) error {
	if _, err := x.Size(); err != nil {
		return err
	}
	if !e.mode.opts.ByRef {
		return errorf(KindInvalid, "an extern array (bytes held elsewhere) is sent by reference only: set EncOptions.ByRef")
	}
	if err := e.ensureFresh(); err != nil {
		return err
	}
	id, ok := e.freshExterns[x]
	if !ok {
		id = len(e.fresh.Items)
		e.fresh.Items = append(e.fresh.Items, Item{ID: id, DType: x.DType, Shape: slices.Clone(x.Shape), Order: x.Order, Extern: x})
		if e.freshExterns == nil {
			e.freshExterns = map[*Extern]int{}
		}
		e.freshExterns[x] = id
	}
	e.appendRefNode(e.freshIndex, id, x.DType, x.Shape, x.Order)
	return nil
}

// heldElsewhere reports whether any item of b is an Extern array.
func (b *Batch) heldElsewhere() bool {
	for i := range b.Items {
		if b.Items[i].Extern != nil {
			return true
		}
	}
	return false
}
