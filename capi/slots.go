package main

import (
	"math"
	"math/big"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

// Values cross the ABI as a skeleton plus slots. The skeleton is a viacodec
// message (envelope and all) in which every array, and every byte string
// passed out of line, is replaced by the typed object
//
//	TagObject ["viacodec.slot", index]
//
// and the slots are C descriptors (vc_slot) of the memory that holds them.
// The name is reserved: a message that carries a typed object of that name
// cannot cross the ABI (KindProtocol), and the Python package refuses to
// encode one.
const slotName = "viacodec.slot"

// maxSlotDims bounds the dimensions of one slot, as numpy does.
const maxSlotDims = 64

// slotBytes is the dtype code of a slot that holds a byte string rather
// than an array (core.DTypeInvalid, which no array has).
const slotBytes = int32(core.DTypeInvalid)

// slotDesc is the Go form of a vc_slot: memory the caller owns.
type slotDesc struct {
	data   unsafe.Pointer
	nbytes uint64
	dtype  int32
	order  int32
	ndim   int32
	shape  unsafe.Pointer // ndim int64s
}

// value returns the *core.Array (or, for slotBytes, the []byte) that views
// the slot's memory. The view is valid while the caller keeps the memory.
func (d slotDesc) value() (any, error) {
	if d.nbytes > math.MaxInt64/2 {
		return nil, errorf(core.KindInvalid, "nbytes %d is too large", d.nbytes)
	}
	if d.data == nil && d.nbytes > 0 {
		return nil, errorf(core.KindInvalid, "data is NULL but nbytes is %d", d.nbytes)
	}
	data := []byte{}
	if d.nbytes > 0 {
		data = unsafe.Slice((*byte)(d.data), int(d.nbytes))
	}
	if d.dtype == slotBytes {
		if d.ndim != 0 {
			return nil, errorf(core.KindInvalid, "a byte-string slot (dtype 0) has ndim %d, not 0", d.ndim)
		}
		return data, nil
	}
	if d.dtype < 0 || d.dtype > math.MaxUint8 || !core.DType(d.dtype).Valid() {
		return nil, errorf(core.KindMismatch, "invalid dtype %d", d.dtype)
	}
	if d.order != int32(core.RowMajor) && d.order != int32(core.ColumnMajor) {
		return nil, errorf(core.KindMismatch, "invalid order %d (0 is row-major, 1 column-major)", d.order)
	}
	if d.ndim < 0 || d.ndim > maxSlotDims {
		return nil, errorf(core.KindInvalid, "ndim %d is outside 0..%d", d.ndim, maxSlotDims)
	}
	if d.ndim > 0 && d.shape == nil {
		return nil, errorf(core.KindInvalid, "shape is NULL but ndim is %d", d.ndim)
	}
	shape := make([]int, d.ndim)
	if d.ndim > 0 {
		for i, n := range unsafe.Slice((*int64)(d.shape), int(d.ndim)) {
			if n < 0 {
				return nil, errorf(core.KindMismatch, "dimension %d is negative (%d)", i, n)
			}
			shape[i] = int(n)
		}
	}
	a, err := core.NewArray(core.DType(d.dtype), shape, core.Order(d.order), data)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// slotValues builds the views of all descriptors before anything is
// encoded, so that a bad descriptor fails the call early.
func slotValues(descs []slotDesc) ([]any, error) {
	vals := make([]any, len(descs))
	for i, d := range descs {
		v, err := d.value()
		if err != nil {
			return nil, wrap(err, "slot %d", i)
		}
		vals[i] = v
	}
	return vals, nil
}

// fillSlots replaces every slot object in the decoded skeleton v with its
// value. Slot objects may repeat an index; unused slots are ignored. The
// containers of v are modified in place (they are fresh from Decode).
func fillSlots(v any, vals []any) (any, error) {
	switch v := v.(type) {
	case []any:
		for i, x := range v {
			y, err := fillSlots(x, vals)
			if err != nil {
				return nil, err
			}
			v[i] = y
		}
	case map[string]any:
		for k, x := range v {
			y, err := fillSlots(x, vals)
			if err != nil {
				return nil, err
			}
			v[k] = y
		}
	case core.Map:
		for i := range v {
			y, err := fillSlots(v[i].Value, vals)
			if err != nil {
				return nil, err
			}
			v[i].Value = y
		}
	case core.Object:
		if v.Name == slotName {
			return slotAt(v.Data, vals)
		}
		y, err := fillSlots(v.Data, vals)
		if err != nil {
			return nil, err
		}
		v.Data = y
		return v, nil
	}
	return v, nil
}

func slotAt(data any, vals []any) (any, error) {
	var i uint64
	switch n := data.(type) {
	case int64:
		if n < 0 {
			return nil, errorf(core.KindInvalid, "slot index %d is negative", n)
		}
		i = uint64(n)
	case uint64:
		i = n
	default:
		return nil, errorf(core.KindInvalid, "slot object holds %T, not an index", data)
	}
	if i >= uint64(len(vals)) {
		return nil, errorf(core.KindInvalid, "slot index %d is out of range (%d slots)", i, len(vals))
	}
	return vals[i], nil
}

// extractor replaces arrays (and large byte strings) of a decoded value
// with slot objects, numbering them in the order of the encoded skeleton.
// Lazy refs stay (refsLazy), become slots to download (refsSlots; one slot
// per distinct ref, which the core already made one value), or are an
// error (refsRefuse).
type extractor struct {
	bytesMin int   // byte strings this long or longer become slots; 0: none
	slots    []any // *core.Array, []byte, or *core.LazyRef
	refs     refMode
	refSlot  map[*core.LazyRef]int64
}

func (x *extractor) slot(v any) core.Object {
	x.slots = append(x.slots, v)
	return core.Object{Name: slotName, Data: int64(len(x.slots) - 1)}
}

func (x *extractor) walk(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, int64, uint64, *big.Int, core.Float16, float32, float64, string:
		return v, nil
	case *core.Array:
		return x.slot(v), nil
	case *core.LazyRef:
		switch x.refs {
		case refsLazy:
			return v, nil
		case refsSlots:
			if i, ok := x.refSlot[v]; ok {
				return core.Object{Name: slotName, Data: i}, nil
			}
			if x.refSlot == nil {
				x.refSlot = map[*core.LazyRef]int64{}
			}
			o := x.slot(v)
			x.refSlot[v] = o.Data.(int64)
			return o, nil
		}
		return nil, errorf(core.KindInvalid, "the message holds references: decode it with a host (vc_host_decode) to download them, or in pass-through to keep them as lazy refs")
	case []byte:
		if x.bytesMin > 0 && len(v) >= x.bytesMin {
			return x.slot(v), nil
		}
		return v, nil
	case []any:
		for i, e := range v {
			y, err := x.walk(e)
			if err != nil {
				return nil, err
			}
			v[i] = y
		}
		return v, nil
	case map[string]any:
		// In encoded order, so that slots are numbered as they appear in
		// the skeleton.
		for _, k := range core.SortedKeys(v) {
			y, err := x.walk(v[k])
			if err != nil {
				return nil, err
			}
			v[k] = y
		}
		return v, nil
	case core.Map:
		for i := range v {
			y, err := x.walk(v[i].Value)
			if err != nil {
				return nil, err
			}
			v[i].Value = y
		}
		return v, nil
	case core.Object:
		if v.Name == slotName {
			return nil, errorf(core.KindProtocol, "the message holds a typed object named %q, which the C ABI reserves", slotName)
		}
		y, err := x.walk(v.Data)
		if err != nil {
			return nil, err
		}
		v.Data = y
		return v, nil
	}
	return nil, errorf(core.KindProtocol, "a decoded %T cannot cross the C ABI yet", v)
}
