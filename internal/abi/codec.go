package abi

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/viacodec/viacodec/core"
)

// maxLimit is the largest length limit core accepts.
const maxLimit = core.MaxLengthLimit

var (
	// skelDecMode reads a caller's skeleton (docs/wire-format.md §4.1).
	// Its limits are the widest core allows: the skeleton is the caller's
	// own value, and the encode that follows applies the real MaxDepth.
	// Byte strings and inline arrays alias the skeleton, which the caller
	// keeps until the message is copied out. Lazy refs are the caller's to
	// forward: encoding writes them as they came.
	skelDecMode = core.MustMode(core.DecOptions{
		MaxDepth: core.MaxDepthLimit, MaxElements: maxLimit, MaxByteLen: maxLimit,
		MaxMessageSize: maxLimit, MaxArrayBytes: maxLimit, ZeroCopy: true, Slots: true,
	}.DecMode())
)

// skelEncMode writes a skeleton from a value whose arrays are slots.
var skelEncMode = core.MustMode(core.EncOptions{MaxDepth: core.MaxDepthLimit, Slots: true}.EncMode())

// DecodeSkeleton reads a skeleton (docs/wire-format.md §4.1) under the
// widest limits core allows: it is the caller's own value, or one that a
// decode already checked against the caller's limits. Its byte strings and
// inline arrays alias skel.
func DecodeSkeleton(skel []byte) (any, error) { return skelDecMode.Decode(skel) }

// EncodeSkeleton writes v, whose arrays are core.SlotIndex values (or
// inline arrays), as a skeleton.
func EncodeSkeleton(v any) ([]byte, error) { return skelEncMode.Marshal(v) }

// IntOption converts an int64 option to int, rejecting what core would
// otherwise see wrapped around.
func IntOption(name string, v int64) (int, error) {
	if v < 0 || v > math.MaxInt32 {
		return 0, Errorf(core.KindInvalid, "option %s %d is out of range", name, v)
	}
	return int(v), nil
}

// EncOptions mirrors the shells' encode options; zero means core's default.
type EncOptions struct {
	MaxDepth int64
}

// EncMode validates o.
func (o EncOptions) EncMode() (*core.EncMode, error) {
	depth, err := IntOption("max_depth", o.MaxDepth)
	if err != nil {
		return nil, err
	}
	return core.EncOptions{MaxDepth: depth}.EncMode()
}

// Encode decodes the caller's skeleton, puts the slots' views in place of
// its slots and encodes the result with mode. The message views the
// skeleton and the slots' memory until it is copied out.
func Encode(skel []byte, slots []Slot, mode *core.EncMode) (*core.Message, error) {
	vals, err := values(slots)
	if err != nil {
		return nil, err
	}
	v, err := DecodeSkeleton(skel)
	if err != nil {
		return nil, valueError(err)
	}
	v, err = core.ReplaceSlots(v, func(i core.SlotIndex) (any, error) {
		if int(i) >= len(vals) {
			return nil, Errorf(core.KindInvalid, "slot index %d is out of range (%d slots)", i, len(vals))
		}
		return vals[i], nil
	})
	if err != nil {
		return nil, err
	}
	return mode.Encode(v)
}

// valueError reports a fault of the caller's skeleton, which is the
// caller's value: an invalid argument (a limit error stays one), with the
// core's text but without an offset into a skeleton the caller never saw.
func valueError(err error) error {
	k, msg := core.KindOf(err), err.Error()
	if e, ok := errors.AsType[*core.Error](err); ok {
		msg = e.Msg
		if e.Err != nil {
			msg += ": " + e.Err.Error()
		}
	}
	if k != core.KindLimit {
		k = core.KindInvalid
	}
	return Errorf(k, "value: %s", msg)
}

// DecOptions mirrors the shells' decode options; zero means core's default.
type DecOptions struct {
	MaxDepth       int64
	MaxElements    int64
	MaxByteLen     int64
	MaxMessageSize int64
	MaxArrayBytes  int64
	BytesSlotMin   int64 // byte strings this long or longer become slots; 0: none
	// ArraySlotMin: inline arrays of fewer bytes cross inside the skeleton
	// (its inline-array tag), others are slots; 0: every array is a slot.
	// Referenced arrays are always slots. Slots are numbered in skeleton
	// order, byte strings among the arrays.
	ArraySlotMin int64
	PassThrough  bool // refs stay lazy refs in the skeleton
	// RefuseUnknown refuses a typed object while planning, before anything
	// is downloaded (core.UnknownAsError): for a caller without a registry
	// of its own, such as the wasm host. Otherwise typed objects cross as
	// they are, for the caller's registry.
	RefuseUnknown bool
	// Interrupted, if not nil, is asked while the message is checked and
	// walked (every few thousand items): once it answers true, Decode
	// ends with KindAborted. The wasm guest asks its host so.
	Interrupted func() bool
}

func (o DecOptions) decMode() (*core.DecMode, error) {
	depth, err := IntOption("max_depth", o.MaxDepth)
	if err != nil {
		return nil, err
	}
	if o.MaxElements < 0 || o.MaxElements > maxLimit {
		return nil, Errorf(core.KindInvalid, "option max_elements %d is out of range", o.MaxElements)
	}
	if o.BytesSlotMin < 0 {
		return nil, Errorf(core.KindInvalid, "option bytes_slot_min %d is negative", o.BytesSlotMin)
	}
	if o.ArraySlotMin < 0 {
		return nil, Errorf(core.KindInvalid, "option array_slot_min %d is negative", o.ArraySlotMin)
	}
	unknown := core.UnknownAsObject
	if o.RefuseUnknown {
		unknown = core.UnknownAsError
	}
	return core.DecOptions{
		MaxDepth: depth, MaxElements: int(o.MaxElements), MaxByteLen: o.MaxByteLen,
		MaxMessageSize: o.MaxMessageSize, MaxArrayBytes: o.MaxArrayBytes,
		ZeroCopy: true, PassThrough: o.PassThrough, UnknownTypes: unknown,
	}.DecMode()
}

// Decoded is a message decoded for a foreign caller: its skeleton, not yet
// written out, and its slots. The slots view the message: the caller keeps
// it alive and unchanged while the Decoded is in use.
type Decoded struct {
	Skeleton *core.Message
	Specs    []SlotSpec
	plan     *core.Plan // from core's DecMode.Skeleton: one core.Slot per spec
	host     int64      // the host handle that downloads the refs; 0: the library's client

	ctx    context.Context // ends with Cancel: the download stops
	cancel context.CancelFunc
}

// Decode plans msg and writes its skeleton (core's DecMode.Skeleton):
// every array becomes a slot the caller allocates, but inline ones shorter
// than ArraySlotMin, which cross inside the skeleton, and every limit is
// checked before the caller allocates anything. Referenced arrays become
// slots too when the caller can download them (canFetch, with host 0 for
// the library's own client, or a host handle); otherwise, unless
// PassThrough, a message with references is an error.
func Decode(msg []byte, o DecOptions, canFetch bool, host int64) (*Decoded, error) {
	mode, err := o.decMode()
	if err != nil {
		return nil, err
	}
	var stop func() error
	if o.Interrupted != nil {
		stop = func() error {
			if o.Interrupted() {
				return Errorf(core.KindAborted, "interrupted by the host")
			}
			return nil
		}
	}
	p, err := mode.Skeleton(msg, o.ArraySlotMin, o.BytesSlotMin, stop)
	if err != nil {
		return nil, err
	}
	if !canFetch {
		for _, s := range p.Slots {
			if s.Ref() {
				return nil, &core.Error{Kind: core.KindInvalid, Offset: s.Node,
					Msg: "the message holds references: decode it with a host to download them, or in pass-through to keep them as lazy refs"}
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Decoded{Skeleton: p.Skeleton, plan: p, host: host, ctx: ctx, cancel: cancel}
	d.Specs = make([]SlotSpec, len(p.Slots))
	for i := range p.Slots {
		s := &p.Slots[i]
		d.Specs[i] = SlotSpec{DType: int32(s.DType), Order: int32(s.Order), Shape: s.Shape, Bytes: uint64(s.Bytes), Ref: s.Ref()}
	}
	return d, nil
}

// Cancel ends the download of the Decoded in progress, and any later
// one: Fetch fails with KindAborted. Safe to call at any time, from any
// goroutine.
func (d *Decoded) Cancel() { d.cancel() }

// check checks destinations against the slots: no more than the slots,
// and each that is not nil of the slot's dtype and byte length.
func (d *Decoded) check(dsts []Slot) error {
	if len(dsts) > len(d.Specs) {
		return Errorf(core.KindInvalid, "%d destinations for %d slots", len(dsts), len(d.Specs))
	}
	for i, dst := range dsts {
		if dst.Data == nil {
			continue
		}
		s := d.Specs[i]
		if dst.DType != s.DType {
			return Errorf(core.KindMismatch, "slot %d holds dtype %d, destination says %d", i, s.DType, dst.DType)
		}
		if uint64(len(dst.Data)) != s.Bytes {
			return Errorf(core.KindMismatch, "slot %d holds %d bytes, destination has %d", i, s.Bytes, len(dst.Data))
		}
	}
	return nil
}

// copyInline copies the inline slots into their destinations.
func (d *Decoded) copyInline(dsts []Slot) {
	for i, dst := range dsts {
		if s := &d.plan.Slots[i]; dst.Data != nil && !s.Ref() {
			s.CopyTo(dst.Data) // checked: cannot fail
		}
	}
}

// Fill copies the slots into the caller's destinations: dsts[i] is slot
// i's, and one with nil Data is skipped. Every destination is checked
// before anything is copied. Referenced slots are refused: Fetch them.
func Fill(d *Decoded, dsts []Slot) error {
	if err := d.check(dsts); err != nil {
		return err
	}
	for i, dst := range dsts {
		if dst.Data != nil && d.plan.Slots[i].Ref() {
			return Errorf(core.KindInvalid, "slot %d is by reference: download it with a host", i)
		}
	}
	d.copyInline(dsts)
	return nil
}

// Fetch is Fill for a Decoded that may hold references: it downloads them
// straight into their destinations through f, under life (the end of the
// host), d's Cancel and a deadline of timeoutNs (negative: none), then
// copies the inline slots. All or nothing: on error the destinations'
// contents are undefined, and nothing writes to them any more.
func Fetch(life context.Context, f core.Fetcher, d *Decoded, dsts []Slot, timeoutNs int64) error {
	if err := d.check(dsts); err != nil {
		return err
	}
	if d.ctx.Err() != nil {
		return Errorf(core.KindAborted, "download cancelled")
	}
	var downloads []core.Download
	for i, dst := range dsts {
		if dst.Data != nil && d.plan.Slots[i].Ref() {
			dl, err := d.plan.Download(i, dst.Data)
			if err != nil {
				return err
			}
			dl.Item.File = dst.File
			downloads = append(downloads, dl)
		}
	}
	if len(downloads) > 0 {
		ctx, cancel := context.WithCancel(life)
		defer cancel()
		defer context.AfterFunc(d.ctx, cancel)()
		if timeoutNs >= 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutNs))
			defer cancel()
		}
		if err := core.FetchAll(ctx, f, downloads); err != nil {
			switch {
			case life.Err() != nil:
				return core.NewError(core.KindAborted, err, "download cancelled: the host was closed")
			case d.ctx.Err() != nil:
				return core.NewError(core.KindAborted, err, "download cancelled")
			}
			return err
		}
	}
	d.copyInline(dsts)
	return nil
}

// Plan returns the decode plan of d (core's DecMode.Skeleton): one
// core.Slot per spec, and the batches its referenced slots download from.
func (d *Decoded) Plan() *core.Plan { return d.plan }

// Host returns the host handle d downloads through; 0: the library's own
// client.
func (d *Decoded) Host() int64 { return d.host }
