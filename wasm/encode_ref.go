package wasm

import (
	"context"
	"io"
	"slices"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/wasm/internal/layout"
)

// Message is a message the guest encoded: its bytes and, when arrays went
// by reference, their batch, as core's Message has. The bytes are the
// host's own copy.
type Message struct {
	data  []byte
	batch *core.Batch
}

// Bytes returns the message. It is the Message's own slice: do not change
// it.
func (m *Message) Bytes() []byte { return m.data }

// Len returns the encoded size in bytes.
func (m *Message) Len() int { return len(m.data) }

// WriteTo writes the message to w.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(m.data)
	return int64(n), err
}

// Batch returns the arrays this encode sent by reference, or nil when it
// referenced none. Its items view the caller's arrays (no copy), as
// core's do: publish it on a table (a Table of this package's, or a
// core.Table), and do not change the arrays until its transaction ends.
func (m *Message) Batch() *core.Batch { return m.batch }

// Encode encodes v into a Message.
func (m *EncMode) Encode(v any) (*Message, error) {
	return m.EncodeContext(context.Background(), v)
}

// EncodeContext is Encode under ctx, which bounds the guest's work.
//
// By reference (ByRef), no array of RefThreshold bytes or more enters the
// guest: it gets their descriptions (dtype, shape, order; one per view of
// memory, as core counts them) and builds the message and the batch
// descriptor, drawing the ref id and token from EncOptions.Rand through
// the host; the batch's items view the caller's arrays. Smaller arrays are
// copied in and go inline, as natively.
func (m *EncMode) EncodeContext(ctx context.Context, v any) (*Message, error) {
	if !m.opts.ByRef {
		b, err := m.encodeInline(ctx, v)
		if err != nil {
			return nil, err
		}
		return &Message{data: b}, nil
	}
	s := splitter{threshold: m.opts.RefThreshold}
	skel, slots, err := s.parcel(v)
	if err != nil {
		return nil, err
	}
	parcel := layout.ParcelSize(len(skel), slots)
	size := parcel + int64(len(m.opts.Source))
	if parcel < 0 || uint64(size) > m.rt.limit {
		return nil, core.NewError(core.KindLimit, nil, "wasm: a value whose inline part is %d bytes does not fit in the guest's memory limit of %d bytes (Options.MemoryLimit)", size, m.rt.limit)
	}
	var e *layout.Encoded
	err = m.rt.with(withRand(ctx, m.opts.Rand), func(ctx context.Context, in *instance) error {
		put := func(buf []byte) {
			layout.PutParcel(buf[:parcel], skel, slots)
			copy(buf[parcel:], m.opts.Source)
		}
		return in.exchange(ctx, uint64(size), put, "vc_encode_ref",
			[]uint64{uint64(parcel), uint64(len(m.opts.Source)), uint64(m.opts.MaxDepth), uint64(m.opts.RefThreshold)},
			func(b []byte) error {
				var err error
				if e, err = layout.ReadEncoded(b); err == nil {
					e.Message = slices.Clone(e.Message)
				}
				return err
			})
	})
	if err != nil {
		return nil, err
	}
	batch, err := s.batch(e, m.opts.Source)
	if err != nil {
		return nil, err
	}
	return &Message{data: e.Message, batch: batch}, nil
}

// parcel splits v and returns its skeleton and slots.
func (s *splitter) parcel(v any) ([]byte, []abi.Slot, error) {
	body := s.split(v, 0)
	if s.err != nil {
		return nil, nil, s.err
	}
	skel, err := abi.EncodeSkeleton(body)
	if err != nil {
		return nil, nil, err
	}
	slots, err := s.slots()
	if err != nil {
		return nil, nil, err
	}
	return skel, slots, nil
}

// add takes array a out of the value and returns its slot. A held array
// (of threshold bytes or more) is one slot per view of memory, as core
// makes one batch item per view (core.Views).
func (s *splitter) add(a *core.Array) core.SlotIndex {
	held := a != nil && s.threshold > 0 && int64(len(a.Data)) >= s.threshold
	if held {
		n, added := s.views.Add(a)
		if !added {
			return core.SlotIndex(s.viewSlots[n])
		}
		s.viewSlots = append(s.viewSlots, len(s.arrays))
	}
	s.arrays = append(s.arrays, a)
	s.held = append(s.held, held)
	return core.SlotIndex(len(s.arrays) - 1)
}

// slots returns the parcel's slots: each array checked, viewed if it is
// copied in, described if it is held.
func (s *splitter) slots() ([]abi.Slot, error) {
	slots := make([]abi.Slot, len(s.arrays))
	for i, a := range s.arrays {
		if err := a.Validate(); err != nil {
			return nil, err
		}
		slots[i] = abi.SlotOf(a)
		if i < len(s.held) && s.held[i] {
			slots[i].Held, slots[i].Data = true, nil
		}
	}
	return slots, nil
}

// batch builds the batch of e, whose items the guest names by their held
// slots, over the caller's arrays. The guest's answer is checked against
// what the host sent: each item a held slot, once, the descriptor's counts
// those of the items, the source the mode's.
func (s *splitter) batch(e *layout.Encoded, source string) (*core.Batch, error) {
	if e.Batch == nil {
		return nil, nil
	}
	b := &core.Batch{Ref: *e.Batch, Items: make([]core.Item, len(e.Handles))}
	seen := make(map[int64]bool, len(e.Handles))
	var total int64
	for i, h := range e.Handles {
		if h < 0 || h >= int64(len(s.arrays)) || !s.held[h] || seen[h] {
			return nil, core.NewError(core.KindInvalid, nil, "wasm: the guest's batch names slot %d for item %d", h, i)
		}
		seen[h] = true
		a := s.arrays[h]
		b.Items[i] = core.Item{ID: i, DType: a.DType, Shape: slices.Clone(a.Shape), Order: a.Order, Data: a.Data}
		total += int64(len(a.Data))
	}
	if b.Ref.Items != len(b.Items) || b.Ref.Bytes != total || b.Ref.Source != source {
		return nil, core.NewError(core.KindInvalid, nil, "wasm: the guest's batch %v does not describe its %d items of %d bytes from %s", b.Ref, len(b.Items), total, source)
	}
	return b, nil
}
