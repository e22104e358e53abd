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
	// Ref nodes in it are lazy refs the caller forwards (pass-through):
	// encoding writes them again as they came.
	skelDecMode = mustMode(core.DecOptions{
		MaxDepth: 4096, MaxElements: maxLimit, MaxByteLen: maxLimit,
		MaxMessageSize: maxLimit, MaxArrayBytes: maxLimit, ZeroCopy: true,
		PassThrough: true,
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
	passThrough    bool  // refs stay ref nodes (lazy refs) in the skeleton
}

// refMode says what decodeMessage does with the references of a message.
type refMode uint8

const (
	refsRefuse refMode = iota // an error: nothing could download them
	refsLazy                  // lazy refs: ref nodes in the skeleton (pass-through)
	refsSlots                 // slots, downloaded into caller memory by vc_decode_fetch
)

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
	return encodeSkeletonWith(mode, skel, descs)
}

// encodeSkeletonWith is encodeSkeleton with an encode mode.
func encodeSkeletonWith(mode *core.EncMode, skel []byte, descs []slotDesc) (*core.Message, error) {
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
	slots []any // *core.Array, []byte, or *core.LazyRef (to download)
}

// decodeMessage decodes msg for the ABI. The core never downloads here: it
// decodes in pass-through, and refs then become what refs says (with
// o.passThrough, always lazy refs).
func decodeMessage(msg []byte, o decOptions, refs refMode) (*decoded, error) {
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
		PassThrough:    true,
	}.DecMode()
	if err != nil {
		return nil, err
	}
	v, err := mode.Decode(msg)
	if err != nil {
		return nil, err
	}
	if o.passThrough {
		refs = refsLazy
	}
	x := extractor{bytesMin: int(min(o.bytesSlotMin, math.MaxInt32)), refs: refs}
	skel, err := x.walk(v)
	if err != nil {
		return nil, err
	}
	if refs == refsSlots {
		// The core counted the inline arrays; the downloads count too.
		var total int64
		for _, s := range x.slots {
			switch s := s.(type) {
			case *core.Array:
				total += int64(len(s.Data))
			case *core.LazyRef:
				total += s.Bytes()
			}
		}
		if limit := mode.Options().MaxArrayBytes; total > limit {
			return nil, core.NewError(core.KindLimit, nil, "array bytes (%d, inline and by reference) exceed MaxArrayBytes %d", total, limit)
		}
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
	case *core.LazyRef:
		return int32(v.DType), int32(v.Order), v.Shape, uint64(v.Bytes())
	}
	panic("capi: slot holds neither an array, bytes nor a reference")
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
// Referenced slots are refused: they are downloaded (fetchSlotsInto).
func fillSlotsInto(slots []any, dsts []slotDesc) error {
	if err := checkDests(slots, dsts); err != nil {
		return err
	}
	for i, d := range dsts {
		if _, ok := slots[i].(*core.LazyRef); ok && d.data != nil {
			return errorf(core.KindInvalid, "slot %d is by reference: fill it with vc_decode_fetch", i)
		}
	}
	copyInline(slots, dsts)
	return nil
}

// checkDests checks the destinations of slots: no more than the slots, and
// each that is not NULL of the slot's dtype and byte length.
func checkDests(slots []any, dsts []slotDesc) error {
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
	return nil
}

// copyInline copies the inline slots into their destinations.
func copyInline(slots []any, dsts []slotDesc) {
	for i, d := range dsts {
		if d.data == nil || d.nbytes == 0 {
			continue
		}
		if _, ok := slots[i].(*core.LazyRef); ok {
			continue
		}
		copy(unsafe.Slice((*byte)(d.data), int(d.nbytes)), slotData(slots[i]))
	}
}

// fetchSlotsInto copies the inline slots into their destinations and
// downloads the referenced ones straight into theirs, through the host's
// client (h must be set when there are any), with a deadline of timeoutNs
// (negative: none). All or nothing: on error the destinations' contents are
// undefined, and nothing writes to them any more.
func fetchSlotsInto(h *host, slots []any, dsts []slotDesc, timeoutNs int64) error {
	if err := checkDests(slots, dsts); err != nil {
		return err
	}
	var downloads []download
	for i, d := range dsts {
		if l, ok := slots[i].(*core.LazyRef); ok && d.data != nil {
			downloads = append(downloads, download{ref: l, dst: refView(d.data, d.nbytes)})
		}
	}
	if len(downloads) > 0 {
		if h == nil {
			return errorf(core.KindInvalid, "the decode handle has references but no host to download them")
		}
		if err := h.acquire(); err != nil {
			return err
		}
		defer h.done()
		if err := fetchInto(h.ctx, h.client, downloads, timeoutNs); err != nil {
			return err
		}
	}
	copyInline(slots, dsts)
	return nil
}

// fetchRefs downloads the lazy refs of a skeleton whose body is a list of
// n ref nodes: ref i into dsts[i] (a NULL one is skipped), through host h,
// or the library's own client when h is nil.
func fetchRefs(h *host, skel []byte, dsts []slotDesc, timeoutNs int64) error {
	v, err := skelDecMode.Decode(skel)
	if err != nil {
		return wrap(err, "skeleton")
	}
	list, ok := v.([]any)
	if !ok || len(list) != len(dsts) {
		return errorf(core.KindInvalid, "the skeleton is not a list of %d ref nodes", len(dsts))
	}
	downloads := make([]download, 0, len(list))
	for i, x := range list {
		l, ok := x.(*core.LazyRef)
		if !ok {
			return errorf(core.KindInvalid, "item %d of the skeleton is a %T, not a ref node", i, x)
		}
		if dsts[i].data == nil {
			continue
		}
		if n := l.Bytes(); dsts[i].dtype != int32(l.DType) || dsts[i].nbytes != uint64(n) {
			return errorf(core.KindMismatch, "ref %d is %s %v (%d bytes), destination says dtype %d, %d bytes",
				i, l.DType, l.Shape, n, dsts[i].dtype, dsts[i].nbytes)
		}
		downloads = append(downloads, download{ref: l, dst: refView(dsts[i].data, dsts[i].nbytes)})
	}
	if h != nil {
		if err := h.acquire(); err != nil {
			return err
		}
		defer h.done()
	}
	f, life, err := fetcherOf(h)
	if err != nil {
		return err
	}
	return fetchInto(life, f, downloads, timeoutNs)
}
