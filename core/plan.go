// For the bindings in internal/abi and wasm; Go users do not need this
// file. Decode is Plan then Place: a host that chooses where each array
// lands (numpy memory, host memory outside a wasm guest) calls the two
// steps itself, and places the slots between them.

package core

import (
	"context"
	"io"
	"slices"
	"strconv"
)

// Plan is a message decoded up to its arrays (DecMode.Plan). Body is the
// value tree with a SlotIndex wherever an array stands; Slots describe the
// arrays, in the order they first appear in the message. The caller
// chooses where each lands: Go memory, numpy memory, host memory outside
// a wasm guest. Inline slots are copied (or viewed) from the message;
// referenced slots are downloaded, all at once, by FetchAll.
type Plan struct {
	Body    any
	Slots   []Slot
	Batches []BatchRef // the message's side table; Slot.Batch indexes it

	// Skeleton is the body as a binding's skeleton, in place of Body, in
	// a plan from DecMode.Skeleton.
	Skeleton *Message
}

// SlotIndex stands in a Plan's body for Plan.Slots[i]. It is not a value
// of the message model: Encode refuses it, except in a skeleton
// (EncOptions.Slots).
type SlotIndex int

// Slot is one array of a Plan, as the message declares it; in a plan
// from DecMode.Skeleton, also a byte string (DType DTypeInvalid, no
// Shape).
type Slot struct {
	DType DType
	Shape []int
	Order Order
	Bytes int64 // DType.Size() × product(Shape)

	// Inline is the payload of an inline array as it stands in the message
	// (a view of the input), big-endian when Swap; nil for a reference.
	// Offset is where Inline starts in the message (-1 for a reference),
	// so that a host holding its own copy of the message can place the
	// array without the payload passing through whoever planned it.
	Inline []byte
	Offset int64
	Swap   bool

	// Batch indexes Plan.Batches for a referenced array, -1 for an inline
	// one; Item is its item id in that batch.
	Batch int
	Item  int

	// Node is where the slot's node (its array, ref node or byte string)
	// starts in the message: the offset of the errors about it.
	Node int64
}

// Ref reports whether the slot's bytes are downloaded rather than inline.
func (s *Slot) Ref() bool { return s.Batch >= 0 }

// CopyTo writes an inline slot's elements into dst, which must hold
// exactly Bytes bytes, in little-endian order.
func (s *Slot) CopyTo(dst []byte) error {
	switch {
	case s.Ref():
		return errorf(KindInvalid, "slot is a reference: download it (FetchAll)")
	case int64(len(dst)) != s.Bytes:
		return errorf(KindMismatch, "destination of %d bytes for a slot of %d", len(dst), s.Bytes)
	case s.Swap:
		swapInto(dst, s.Inline, s.DType.Size())
	default:
		copy(dst, s.Inline)
	}
	return nil
}

// Download returns the download of referenced slot i of p into dst.
func (p *Plan) Download(i int, dst []byte) (Download, error) {
	s := &p.Slots[i]
	if !s.Ref() {
		return Download{}, errorf(KindInvalid, "slot %d is inline", i)
	}
	if int64(len(dst)) != s.Bytes {
		return Download{}, errorf(KindMismatch, "destination of %d bytes for slot %d of %d", len(dst), i, s.Bytes)
	}
	return Download{Batch: p.Batches[s.Batch], Item: FetchItem{ID: s.Item, DType: s.DType, Shape: s.Shape, Order: s.Order, Dst: dst}}, nil
}

// Plan decodes a message up to its arrays: every limit is checked from
// what the message declares, and no array memory is allocated. Each array,
// inline or referenced, becomes a Slot and a SlotIndex in the body; with
// PassThrough, references stay *LazyRef values instead. Typed objects stay
// Object values: the registry is not consulted, as their arrays are not
// placed yet.
func (m *DecMode) Plan(data []byte) (*Plan, error) {
	return m.planWith(data, false)
}

// add appends s and returns its index.
func (p *Plan) add(s Slot) SlotIndex {
	p.Slots = append(p.Slots, s)
	return SlotIndex(len(p.Slots) - 1)
}

// deferred is a registered typed object whose recompose waits until the
// arrays of its data are placed.
type deferred struct {
	t    *typeEntry
	name string
	data any
	off  int64
}

// Place puts p's arrays in Go memory (or the Allocator's), downloads the
// referenced ones through the Fetcher and returns the body with *Array
// values in place of the slots, registered typed objects recomposed: the
// second half of Decode, after Plan. Inline arrays are copied (or, with
// ZeroCopy, viewed) from their Slot.Inline: a host that planned the
// message elsewhere (a wasm guest) places it from its own copy by making
// each Inline a view of that copy. Every limit was checked by the plan;
// Place checks only what it relies on: each slot index of the body names
// a slot.
func (m *DecMode) Place(ctx context.Context, p *Plan) (any, error) {
	return m.place(ctx, p, nil)
}

// Destination is where PlaceIn puts an array: Mem, of exactly the slot's
// bytes, and optionally File, which reaches the same bytes
// (FetchItem.File: a file that Mem maps).
type Destination struct {
	Mem  []byte
	File io.WriterAt
}

// PlaceIn is Place with every array, inline or referenced, landing in the
// destination that dst returns for slot i (a file mapping, a foreign
// buffer). dst is called once per slot, in slot order; the arrays of the
// result view the destinations' Mem.
func (m *DecMode) PlaceIn(ctx context.Context, p *Plan, dst func(i int) (Destination, error)) (any, error) {
	if dst == nil {
		return nil, errorf(KindInvalid, "PlaceIn needs a destination for each slot")
	}
	return m.place(ctx, p, dst)
}

func (m *DecMode) place(ctx context.Context, p *Plan, place func(i int) (Destination, error)) (any, error) {
	if m.opts.Fetcher == nil {
		for _, s := range p.Slots {
			if s.Ref() {
				return nil, errorAt(KindInvalid, int(s.Node), "message holds references: set DecOptions.Fetcher, or PassThrough")
			}
		}
	}
	arrays := make([]Array, len(p.Slots)) // one allocation for all headers
	var downloads []Download
	for i := range p.Slots {
		s := &p.Slots[i]
		a := &arrays[i]
		*a = Array{DType: s.DType, Shape: s.Shape, Order: s.Order}
		if place != nil || s.Ref() {
			var d Destination
			var err error
			if place != nil {
				d, err = place(i)
			} else {
				d.Mem, err = m.opts.Allocator(s.DType, s.Shape, s.Order, s.Bytes)
			}
			dst := d.Mem
			if err != nil {
				return nil, &Error{Kind: KindOf(err), Offset: s.Node, Msg: "allocate destination", Err: err}
			}
			if int64(len(dst)) != s.Bytes {
				return nil, errorAt(KindInvalid, int(s.Node), "allocator returned %d bytes for %d", len(dst), s.Bytes)
			}
			a.Data = dst
			if !s.Ref() {
				s.CopyTo(dst) // checked: cannot fail
				continue
			}
			dl, err := p.Download(i, dst)
			if err != nil {
				return nil, err
			}
			dl.Item.File = d.File
			downloads = append(downloads, dl)
			continue
		}
		switch {
		case s.Swap:
			a.Data = make([]byte, s.Bytes)
			swapInto(a.Data, s.Inline, s.DType.Size())
		case m.opts.ZeroCopy:
			a.Data = s.Inline
		default:
			a.Data = slices.Clone(s.Inline)
			if a.Data == nil {
				a.Data = []byte{}
			}
		}
	}
	if err := FetchAll(ctx, m.opts.Fetcher, downloads); err != nil {
		return nil, err
	}
	return ReplaceSlots(p.Body, func(i SlotIndex) (any, error) {
		if i < 0 || int(i) >= len(arrays) {
			return nil, errorf(KindInvalid, "the plan's body names slot %d of %d", i, len(arrays))
		}
		return &arrays[i], nil
	})
}

// ReplaceSlots returns v with every SlotIndex replaced by f's value for
// it, and the registered typed objects a decode deferred recomposed,
// innermost first. Containers are changed in place.
func ReplaceSlots(v any, f func(SlotIndex) (any, error)) (any, error) {
	var err error
	switch x := v.(type) {
	case SlotIndex:
		return f(x)
	case []any:
		for i := range x {
			if x[i], err = ReplaceSlots(x[i], f); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k, e := range x {
			if x[k], err = ReplaceSlots(e, f); err != nil {
				return nil, err
			}
		}
	case Map:
		for i := range x {
			if x[i].Value, err = ReplaceSlots(x[i].Value, f); err != nil {
				return nil, err
			}
		}
	case Object:
		if x.Data, err = ReplaceSlots(x.Data, f); err != nil {
			return nil, err
		}
		return x, nil
	case *deferred:
		data, err := ReplaceSlots(x.data, f)
		if err != nil {
			return nil, err
		}
		r, err := x.t.recompose(data)
		if err != nil {
			return nil, &Error{Kind: KindMismatch, Offset: x.off, Msg: "recompose " + strconv.Quote(x.name), Err: err}
		}
		return r, nil
	}
	return v, nil
}
