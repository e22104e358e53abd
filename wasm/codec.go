package wasm

import (
	"context"
	"reflect"
	"slices"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/offload"
	"github.com/viacodec/viacodec/wasm/internal/layout"
)

// Encoder is what core's EncMode and this package's EncMode share: a Go
// host switches between encoding natively and in the sandbox by changing
// the constructor alone.
type Encoder interface {
	Marshal(v any) ([]byte, error)
}

// Decoder is what core's DecMode and this package's DecMode share.
type Decoder interface {
	Decode(data []byte) (any, error)
	DecodeContext(ctx context.Context, data []byte) (any, error)
}

var (
	_ Encoder = (*core.EncMode)(nil)
	_ Encoder = (*EncMode)(nil)
	_ Decoder = (*core.DecMode)(nil)
	_ Decoder = (*DecMode)(nil)
)

// EncMode encodes in the guest, as core's EncMode with the same options
// would: the same bytes and errors of the same kinds. Safe for concurrent
// use.
type EncMode struct {
	rt   *Runtime
	opts core.EncOptions
}

// EncMode validates o as core does and returns the mode it describes.
// Registered types are not supported yet (KindInvalid). Encoding inline,
// the guest gets every array copied into its memory; by reference (ByRef),
// the arrays of RefThreshold bytes or more stay in the caller's memory and
// the guest encodes them from their descriptions (see Encode).
func (r *Runtime) EncMode(o core.EncOptions) (*EncMode, error) {
	m, err := o.EncMode()
	if err != nil {
		return nil, err
	}
	if o.Registry != nil {
		return nil, core.NewError(core.KindInvalid, nil, "wasm: EncOptions.Registry is not supported yet")
	}
	return &EncMode{rt: r, opts: m.Options()}, nil
}

// Marshal encodes v and returns the message bytes.
func (m *EncMode) Marshal(v any) ([]byte, error) {
	return m.MarshalContext(context.Background(), v)
}

// MarshalContext is Marshal under ctx: its deadline or cancellation stops
// the guest (KindTimeout, KindAborted).
func (m *EncMode) MarshalContext(ctx context.Context, v any) ([]byte, error) {
	msg, err := m.EncodeContext(ctx, v)
	if err != nil {
		return nil, err
	}
	return msg.data, nil
}

// encodeInline has the guest encode v with every array copied in.
func (m *EncMode) encodeInline(ctx context.Context, v any) ([]byte, error) {
	s := splitter{}
	skel, slots, err := s.parcel(v)
	if err != nil {
		return nil, err
	}
	size := layout.ParcelSize(len(skel), slots)
	if size < 0 || uint64(size) > m.rt.limit {
		return nil, core.NewError(core.KindLimit, nil, "wasm: a value of %d bytes does not fit in the guest's memory limit of %d bytes (Options.MemoryLimit)", size, m.rt.limit)
	}
	var out []byte
	err = m.rt.with(ctx, func(ctx context.Context, in *instance) error {
		return in.exchange(ctx, uint64(size), func(buf []byte) { layout.PutParcel(buf, skel, slots) },
			"vc_encode", []uint64{uint64(size), uint64(m.opts.MaxDepth)},
			func(b []byte) error { out = slices.Clone(b); return nil })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// splitter takes the arrays out of a value: the skeleton has a
// core.SlotIndex where an array stood. Containers are copied, never
// changed; past the deepest skeleton the encoder allows, the value is
// left as it is, for the encoder to refuse. With a threshold, arrays of
// that many bytes or more are held (see add).
type splitter struct {
	arrays []*core.Array

	threshold int64      // 0: every array is copied in
	held      []bool     // held[i]: arrays[i] stays in the caller's memory
	views     core.Views // the held arrays' views of memory
	viewSlots []int      // per view: its slot
	err       error      // a value the host cannot send
}

func (s *splitter) split(v any, depth int) any {
	if depth > core.MaxDepthLimit {
		return v
	}
	switch x := v.(type) {
	case *core.Array:
		return s.add(x)
	case *core.Extern:
		if s.err == nil {
			s.err = core.NewError(core.KindInvalid, nil, "wasm: a core.Extern has no bytes for the host to serve: pass the *core.Array")
		}
		return nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = s.split(e, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = s.split(e, depth+1)
		}
		return out
	case map[any]any:
		out := make(map[any]any, len(x))
		for k, e := range x {
			out[k] = s.split(e, depth+1)
		}
		return out
	case core.Map:
		out := make(core.Map, len(x))
		for i, p := range x {
			out[i] = core.Pair{Key: p.Key, Value: s.split(p.Value, depth+1)}
		}
		return out
	case core.Object:
		return core.Object{Name: x.Name, Data: s.split(x.Data, depth+1)}
	}
	// A Go type core reads as a model value (a typed slice is an array):
	// split what it stands for. What core refuses, its encoder refuses.
	if w, err := core.Normalize(v); err == nil && reflect.TypeOf(w) != reflect.TypeOf(v) {
		return s.split(w, depth)
	}
	return v
}

// DecMode decodes in the guest, as core's DecMode with the same options
// would: the same values and errors of the same kinds and offsets. The
// guest parses and checks the message and returns its plan; the host
// places the arrays through core's placement (core.DecMode.Place), from
// its own copy of the message (no array byte comes back out of the
// guest), and downloads the referenced ones through the Fetcher. Safe
// for concurrent use.
type DecMode struct {
	rt   *Runtime
	opts core.DecOptions
	core *core.DecMode // places the guest's plans
}

// DecMode validates o as core does and returns the mode it describes.
// Registered types and skeletons (Registry, Slots) are not supported yet
// (KindInvalid).
func (r *Runtime) DecMode(o core.DecOptions) (*DecMode, error) {
	m, err := o.DecMode()
	if err != nil {
		return nil, err
	}
	switch {
	case o.Registry != nil:
		return nil, core.NewError(core.KindInvalid, nil, "wasm: DecOptions.Registry is not supported yet")
	case o.Slots:
		return nil, core.NewError(core.KindInvalid, nil, "wasm: DecOptions.Slots is for bindings; decode natively")
	}
	return &DecMode{rt: r, opts: m.Options(), core: m}, nil
}

// Decode decodes a message.
func (m *DecMode) Decode(data []byte) (any, error) {
	return m.DecodeContext(context.Background(), data)
}

// DecodeContext is Decode under ctx, which bounds the guest's work and
// the downloads.
func (m *DecMode) DecodeContext(ctx context.Context, data []byte) (any, error) {
	p, err := m.plan(ctx, data, false)
	if err != nil {
		return nil, err
	}
	return m.core.Place(ctx, p)
}

// DecodeOffload is DecodeContext with every array landing in a
// safetensors file that o names (package offload): the guest plans, the
// host writes the file, downloading the references straight into it, and
// the value's arrays view it read-only until Close.
func (m *DecMode) DecodeOffload(ctx context.Context, data []byte, o offload.Options) (*offload.Value, error) {
	p, err := m.plan(ctx, data, true)
	if err != nil {
		return nil, err
	}
	return offload.Place(ctx, m.core, p, o)
}

// Flags of vc_decode (wasm/guest).
const (
	decodePassThrough = 1 << iota
	decodeCanFetch
	_ // DecodeKeep: for a caller that fills slots in the guest
	decodeRefuseUnknown
)

// arraySlotMin is the guest's DecOptions.ArraySlotMin for a decode into
// Go memory without ZeroCopy: inline arrays of fewer bytes cross inside
// the skeleton, which the host reads in one go, rather than as slots,
// each of which costs a slot in the plan, its layout and a placement.
// With ZeroCopy every array is a slot, placed as a view of the caller's
// message, and so for DecodeOffload, which lands every array in a file.
const arraySlotMin = 4 << 10

// plan has the guest plan data and returns the plan, its body read from
// the guest's skeleton (with the small inline arrays) and its slots
// viewing data; every array is a slot with everySlot. The guest plans
// references as slots even without a Fetcher: core's placement refuses
// them then, with core's error.
func (m *DecMode) plan(ctx context.Context, data []byte, everySlot bool) (*core.Plan, error) {
	if uint64(len(data)) > m.rt.limit {
		return nil, core.NewError(core.KindLimit, nil, "wasm: a message of %d bytes does not fit in the guest's memory limit of %d bytes (Options.MemoryLimit)", len(data), m.rt.limit)
	}
	o := m.opts
	flags, slotMin := uint64(decodeCanFetch), uint64(arraySlotMin)
	if o.ZeroCopy || everySlot {
		slotMin = 0
	}
	if o.PassThrough {
		flags |= decodePassThrough
	}
	if o.UnknownTypes == core.UnknownAsError {
		flags |= decodeRefuseUnknown
	}
	var b []byte
	err := m.rt.with(ctx, func(ctx context.Context, in *instance) error {
		return in.exchange(ctx, uint64(len(data)), func(buf []byte) { copy(buf, data) },
			"vc_decode", []uint64{uint64(len(data)),
				uint64(o.MaxDepth), uint64(o.MaxElements), uint64(o.MaxByteLen),
				uint64(o.MaxMessageSize), uint64(o.MaxArrayBytes), 0, slotMin, flags},
			func(r []byte) error { b = slices.Clone(r); return nil })
	})
	if err != nil {
		return nil, err
	}
	pl, err := layout.ReadPlan(b, data)
	if err != nil {
		return nil, err
	}
	p := pl.Plan
	// The guest checked the limits; the host checks what it would
	// allocate from before it trusts the plan.
	var refBytes int64
	for i := range p.Slots {
		s := &p.Slots[i]
		switch {
		case s.DType == core.DTypeInvalid:
			return nil, core.NewError(core.KindInvalid, nil, "wasm: the guest planned a byte-string slot")
		case s.Ref():
			if refBytes += s.Bytes; refBytes > o.MaxArrayBytes {
				return nil, core.NewError(core.KindLimit, nil, "wasm: references of %d bytes exceed MaxArrayBytes %d", refBytes, o.MaxArrayBytes)
			}
		}
	}
	if p.Body, err = abi.DecodeSkeleton(pl.Skeleton); err != nil {
		return nil, core.NewError(core.KindInvalid, err, "wasm: the guest's skeleton")
	}
	return p, nil
}
