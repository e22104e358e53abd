package main

import (
	"math"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

// The two halves of the inline codec, in plain Go: the exports in
// exports.go only move their arguments between C and these functions.

// maxLimit is the largest length limit core accepts (2^48).
const maxLimit = 1 << 48

var (
	// skelDecMode reads the caller's skeleton. Its limits are the widest
	// core allows: the skeleton is the caller's own value, and the encode
	// that follows applies the real MaxDepth. Byte strings alias the
	// skeleton, which the caller keeps until the message is copied out.
	skelDecMode = mustMode(core.DecOptions{
		MaxDepth: 4096, MaxElements: maxLimit, MaxByteLen: maxLimit,
		MaxMessageSize: maxLimit, MaxArrayBytes: maxLimit, ZeroCopy: true,
	}.DecMode())
	// skelEncMode writes the skeleton of a decoded message, which nests no
	// deeper than the message the decode accepted.
	skelEncMode = mustMode(core.EncOptions{MaxDepth: 4096}.EncMode())
)

func mustMode[M any](m M, err error) M {
	if err != nil {
		panic("capi: built-in options are invalid: " + err.Error())
	}
	return m
}

// encOptions mirrors vc_enc_options; zero fields mean core's defaults.
type encOptions struct {
	maxDepth int64
}

// decOptions mirrors vc_dec_options; zero fields mean core's defaults.
type decOptions struct {
	maxDepth       int64
	maxElements    int64
	maxByteLen     int64
	maxMessageSize int64
	maxArrayBytes  int64
	bytesSlotMin   int64 // byte strings this long or longer go out of line; 0: none
}

// intOption converts a C int64 option to int, rejecting what core would
// otherwise see wrapped around.
func intOption(name string, v int64) (int, error) {
	if v < 0 || v > math.MaxInt32 {
		return 0, errorf(core.KindInvalid, "option %s %d is out of range", name, v)
	}
	return int(v), nil
}

// encodeSkeleton decodes the caller's skeleton, puts the slot views in
// place of the slot objects and encodes the result. The message views the
// skeleton and the slots' memory until it is copied out.
func encodeSkeleton(skel []byte, descs []slotDesc, o encOptions) (*core.Message, error) {
	depth, err := intOption("max_depth", o.maxDepth)
	if err != nil {
		return nil, err
	}
	mode, err := core.EncOptions{MaxDepth: depth}.EncMode()
	if err != nil {
		return nil, err
	}
	vals, err := slotValues(descs)
	if err != nil {
		return nil, err
	}
	v, err := skelDecMode.Decode(skel)
	if err != nil {
		return nil, wrap(err, "skeleton")
	}
	if v, err = fillSlots(v, vals); err != nil {
		return nil, err
	}
	return mode.Encode(v)
}

// decoded is a message decoded for the ABI: its skeleton, not yet written
// out, and the slot values (arrays and long byte strings), which alias the
// message except for arrays that needed a byte swap.
type decoded struct {
	skel  *core.Message
	slots []any // *core.Array or []byte
}

func decodeMessage(msg []byte, o decOptions) (*decoded, error) {
	depth, err := intOption("max_depth", o.maxDepth)
	if err != nil {
		return nil, err
	}
	if o.maxElements < 0 || o.maxElements > maxLimit {
		return nil, errorf(core.KindInvalid, "option max_elements %d is out of range", o.maxElements)
	}
	if o.bytesSlotMin < 0 {
		return nil, errorf(core.KindInvalid, "option bytes_slot_min %d is negative", o.bytesSlotMin)
	}
	mode, err := core.DecOptions{
		MaxDepth:       depth,
		MaxElements:    int(o.maxElements),
		MaxByteLen:     o.maxByteLen,
		MaxMessageSize: o.maxMessageSize,
		MaxArrayBytes:  o.maxArrayBytes,
		ZeroCopy:       true,
	}.DecMode()
	if err != nil {
		return nil, err
	}
	v, err := mode.Decode(msg)
	if err != nil {
		return nil, err
	}
	x := extractor{bytesMin: int(min(o.bytesSlotMin, math.MaxInt32))}
	skel, err := x.walk(v)
	if err != nil {
		return nil, err
	}
	m, err := skelEncMode.Encode(skel)
	if err != nil {
		return nil, wrap(err, "skeleton")
	}
	return &decoded{skel: m, slots: x.slots}, nil
}

// slotSpec describes slot value v as a descriptor without data.
func slotSpec(v any) (dtype, order int32, shape []int, nbytes uint64) {
	switch v := v.(type) {
	case *core.Array:
		return int32(v.DType), int32(v.Order), v.Shape, uint64(len(v.Data))
	case []byte:
		return slotBytes, 0, nil, uint64(len(v))
	}
	panic("capi: slot holds neither an array nor bytes")
}

func slotData(v any) []byte {
	if a, ok := v.(*core.Array); ok {
		return a.Data
	}
	return v.([]byte)
}

// fillSlotsInto copies each slot value into the destination the caller
// gave for it. dsts[i] is slot i's destination; one whose data is NULL is
// skipped. Every destination is checked before any byte is copied.
func fillSlotsInto(slots []any, dsts []slotDesc) error {
	if len(dsts) > len(slots) {
		return errorf(core.KindInvalid, "%d destinations for %d slots", len(dsts), len(slots))
	}
	for i, d := range dsts {
		if d.data == nil {
			continue
		}
		dtype, _, _, nbytes := slotSpec(slots[i])
		if d.dtype != dtype {
			return errorf(core.KindMismatch, "slot %d holds dtype %d, destination says %d", i, dtype, d.dtype)
		}
		if d.nbytes != nbytes {
			return errorf(core.KindMismatch, "slot %d holds %d bytes, destination has %d", i, nbytes, d.nbytes)
		}
	}
	for i, d := range dsts {
		if d.data == nil || d.nbytes == 0 {
			continue
		}
		copy(unsafe.Slice((*byte)(d.data), int(d.nbytes)), slotData(slots[i]))
	}
	return nil
}
