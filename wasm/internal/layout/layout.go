// Package layout holds the byte forms in which values cross the memory of
// a wasm guest, which has no structs and no Go pointers: the host (package
// wasm) and the guest (wasm/guest) both write and read them here, so that
// neither can disagree with the other.
//
// Each layout is little-endian. A reader checks every count
// and offset against the bytes really there before it allocates: whoever
// wrote the layout may be broken.
//
// Results of the guest's exports are integers: a buffer comes back as
// ptr<<32 | len (PackResult), a failure as a status in the low bits with
// ptr 0 (PackStatus), so that one call returns either.
//
// Files: layout.go (results, errors, parcels, plans), table.go (encoding
// by reference from held slots, and the requests and answers of a table
// in the guest).
package layout

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// LayoutVersion changes whenever a layout, or an export of the wasm guest,
// changes incompatibly; the host checks the guest's before it calls it.
const LayoutVersion = 5

// PackResult packs a buffer at ptr (never 0) of n bytes.
func PackResult(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// PackStatus packs a failure of kind k.
func PackStatus(k core.Kind) uint64 { return uint64(k) }

// UnpackResult returns the buffer of r, or its failure's kind.
func UnpackResult(r uint64) (ptr, n uint32, status core.Kind) {
	ptr = uint32(r >> 32)
	if ptr == 0 {
		k := core.Kind(r)
		if !k.Valid() || r>>8 != 0 {
			k = core.KindInvalid
		}
		return 0, 0, k
	}
	return ptr, uint32(r), core.KindNone
}

// layoutError reports a malformed layout: a bug on the other side.
func layoutError(what string, off int) error {
	return abi.Errorf(core.KindInvalid, "malformed %s layout at byte %d", what, off)
}

// reader reads a layout, remembering the first error.
type reader struct {
	b    []byte
	off  int
	what string
	err  error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = layoutError(r.what, r.off)
	}
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.fail()
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8() uint8 {
	if b := r.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) i64() int64 { return int64(r.u64()) }

// count reads a u32 count of items each at least min bytes long, and
// checks that they can be there.
func (r *reader) count(min int) int {
	n := int(r.u32())
	if r.err == nil && n > (len(r.b)-r.off)/min {
		r.fail()
		return 0
	}
	return n
}

// span reads an offset and a length and checks them against size.
func (r *reader) span(size int) (off, n int) {
	o, l := r.u64(), r.u64()
	if r.err == nil && (o > uint64(size) || l > uint64(size)-o) {
		r.fail()
		return 0, 0
	}
	return int(o), int(l)
}

// ---- Errors ----

// AppendError appends err's layout:
//
//	u32 kind, u32 0, i64 offset (-1: none), text (the rest)
//
// The text is err's message without the clause " at offset N" that
// names the offset, which travels as a number; ReadError puts it back.
func AppendError(dst []byte, err error) []byte {
	k := abi.KindOf(err)
	if k == core.KindNone {
		k = core.KindInvalid
	}
	off := abi.OffsetOf(err)
	text := err.Error()
	if off >= 0 {
		text = strings.Replace(text, " at offset "+strconv.FormatInt(off, 10), "", 1)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(k))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(off))
	return append(dst, text...)
}

// ReadError returns the error of layout b as a *core.Error of its kind
// and offset, whose text is the one the guest's error had.
func ReadError(b []byte) error {
	r := reader{b: b, what: "error"}
	k := core.Kind(r.u32())
	r.u32()
	off := r.i64()
	if r.err != nil {
		return r.err
	}
	if !k.Valid() {
		k = core.KindInvalid
	}
	e := core.NewError(k, nil, "%s", b[r.off:])
	if off >= 0 {
		e.Offset = off
	}
	return e
}

// ---- Parcels: a skeleton and its slots in one buffer ----

// A parcel is a skeleton and its slots packed in one buffer: what the
// host hands the guest to encode (the slots' bytes copied in), or the
// destinations of a fill (the skeleton empty). Its layout:
//
//	u64 skeleton offset, u64 skeleton length, u32 slot count, u32 0
//	per slot: u64 data offset, u64 data length, i32 dtype, i32 order,
//	          u32 ndim, u32 flags, ndim × i64 dimensions
//	then the skeleton and the slots' bytes, each at an offset that is a
//	multiple of 8
//
// Offsets count from the start of the parcel. Flags: ParcelHeld for a
// held slot (abi.Slot.Held), whose data length is 0.

// ParcelSize returns the size of the parcel of a skeleton of skelLen bytes
// and slots (their Data lengths and shapes), or -1 if it would not fit in
// a 32-bit memory.
func ParcelSize(skelLen int, slots []abi.Slot) int64 {
	n := uint64(24) + pad8(uint64(skelLen))
	for _, s := range slots {
		n += 32 + 8*uint64(len(s.Shape)) + pad8(uint64(len(s.Data)))
		if n > math.MaxUint32 {
			return -1
		}
	}
	if n > math.MaxUint32 {
		return -1
	}
	return int64(n)
}

func pad8(n uint64) uint64 { return (n + 7) &^ 7 }

// ParcelHeld is the flag of a held slot in a parcel.
const ParcelHeld = 1

// PutParcel writes the parcel of skel and slots into buf, which must hold
// ParcelSize bytes, copying the skeleton and the slots' bytes.
func PutParcel(buf []byte, skel []byte, slots []abi.Slot) {
	le := binary.LittleEndian
	head := 24
	for _, s := range slots {
		head += 32 + 8*len(s.Shape)
	}
	data := head
	le.PutUint64(buf[0:], uint64(data))
	le.PutUint64(buf[8:], uint64(len(skel)))
	le.PutUint32(buf[16:], uint32(len(slots)))
	le.PutUint32(buf[20:], 0)
	copy(buf[data:], skel)
	data += int(pad8(uint64(len(skel))))
	p := 24
	for _, s := range slots {
		le.PutUint64(buf[p:], uint64(data))
		le.PutUint64(buf[p+8:], uint64(len(s.Data)))
		le.PutUint32(buf[p+16:], uint32(s.DType))
		le.PutUint32(buf[p+20:], uint32(s.Order))
		le.PutUint32(buf[p+24:], uint32(len(s.Shape)))
		var flags uint32
		if s.Held {
			flags |= ParcelHeld
		}
		le.PutUint32(buf[p+28:], flags)
		p += 32
		for _, n := range s.Shape {
			le.PutUint64(buf[p:], uint64(n))
			p += 8
		}
		copy(buf[data:], s.Data)
		data += int(pad8(uint64(len(s.Data))))
	}
}

// ReadParcel returns the skeleton and slots of the parcel in buf, viewing
// buf: a slot's Data is its bytes in the parcel.
func ReadParcel(buf []byte) (skel []byte, slots []abi.Slot, err error) {
	r := reader{b: buf, what: "parcel"}
	so, sn := r.span(len(buf))
	n := r.count(32)
	r.u32()
	if r.err != nil {
		return nil, nil, r.err
	}
	slots = make([]abi.Slot, n)
	for i := range slots {
		do, dn := r.span(len(buf))
		s := abi.Slot{DType: int32(r.u32()), Order: int32(r.u32())}
		ndim := int(r.u32())
		flags := r.u32()
		if r.err == nil && (ndim > core.MaxDims || flags&^ParcelHeld != 0 || (flags&ParcelHeld != 0 && dn != 0)) {
			r.fail()
		}
		if r.err != nil {
			return nil, nil, r.err
		}
		s.Held = flags&ParcelHeld != 0
		s.Data = buf[do : do+dn : do+dn]
		if ndim > 0 {
			s.Shape = make([]int64, ndim)
			for j := range s.Shape {
				s.Shape[j] = r.i64()
			}
		}
		slots[i] = s
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	return buf[so : so+sn : so+sn], slots, nil
}

// ---- Plans ----

// Kinds of a planned slot, as the plan layout writes them.
const (
	slotInline = iota // an inline array: in the message
	slotRef           // a referenced array: downloaded from its batch
	slotString        // a byte string passed out of line (BytesSlotMin): in the message
)

// PlanLayout is a decoded message as the host reads it from the guest:
// the skeleton, and core's plan of the message (core.DecMode.Skeleton)
// whose inline slots view the host's own copy of the message.
type PlanLayout struct {
	Handle   int64 // the guest's decode handle, for a fill; 0: none kept
	Skeleton []byte
	// Plan has the slots the skeleton's slot tags number and the batch
	// descriptors the referenced slots download from; its Body is for
	// the reader to fill. A byte-string slot has DType core.DTypeInvalid.
	Plan *core.Plan
}

// AppendPlan appends the layout of d, decoded from msg, with handle:
//
//	i64 handle, u64 skeleton length, u32 slot count, u32 batch count
//	skeleton, padded to a multiple of 8
//	per slot: u8 kind, u8 dtype, u8 order, u8 swap, u32 ndim,
//	          i64 bytes, i64 offset, i64 batch, i64 item, ndim × i64
//	per batch: u32 source length, u32 holder length, i64 items, i64 bytes,
//	           16 ref id, 32 token, source and holder each padded to a
//	           multiple of 8
//
// Every slot of d is one of its plan's (core.DecMode.Skeleton), a byte
// string among them with DType core.DTypeInvalid; msg is the message d
// was decoded from. The offset of an inline array or byte string is where
// its bytes stand in msg (-1: not a view of msg); that of a referenced
// array is where its ref node starts (core.Slot.Node), for errors.
func AppendPlan(dst []byte, d *abi.Decoded, msg []byte, handle int64) []byte {
	le := binary.LittleEndian
	skel := d.Skeleton.Len()
	dst = le.AppendUint64(dst, uint64(handle))
	dst = le.AppendUint64(dst, uint64(skel))
	dst = le.AppendUint32(dst, uint32(len(d.Specs)))
	dst = le.AppendUint32(dst, uint32(len(d.Plan().Batches)))
	dst = d.Skeleton.AppendTo(dst)
	dst = append(dst, make([]byte, pad8(uint64(skel))-uint64(skel))...)
	for i, s := range d.Specs {
		ps := &d.Plan().Slots[i]
		kind, offset, batch, item := uint8(slotInline), ps.Offset, int64(-1), int64(-1)
		switch {
		case ps.Ref():
			kind, offset, batch, item = slotRef, ps.Node, int64(ps.Batch), int64(ps.Item)
		case ps.DType == core.DTypeInvalid:
			kind = slotString
		}
		if kind != slotRef && (offset < 0 || offset > int64(len(msg))-ps.Bytes) {
			offset = -1 // not a view of msg: the host cannot place it from its copy
		}
		dst = append(dst, kind, uint8(s.DType), uint8(s.Order), b2u8(ps.Swap))
		dst = le.AppendUint32(dst, uint32(len(s.Shape)))
		dst = le.AppendUint64(dst, s.Bytes)
		dst = le.AppendUint64(dst, uint64(offset))
		dst = le.AppendUint64(dst, uint64(batch))
		dst = le.AppendUint64(dst, uint64(item))
		for _, n := range s.Shape {
			dst = le.AppendUint64(dst, uint64(n))
		}
	}
	for _, b := range d.Plan().Batches {
		dst = appendBatchRef(dst, b)
	}
	return dst
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// ReadPlan reads a plan layout of msg, the host's copy of the message the
// guest planned. It checks what the host relies on: every slot's dtype,
// shape and byte length agree, inline bytes lie within msg (the slot's
// Inline views them there), and referenced slots name a batch of the
// layout. Skeleton views b.
func ReadPlan(b []byte, msg []byte) (*PlanLayout, error) {
	r := reader{b: b, what: "plan"}
	p := &PlanLayout{Handle: r.i64(), Plan: &core.Plan{}}
	skel := r.u64()
	nslots := r.count(40)
	nbatches := r.count(72)
	if r.err == nil && skel > uint64(len(b)) {
		r.fail()
	}
	p.Skeleton = r.next(int(skel))
	r.next(int(pad8(skel) - skel))
	if r.err != nil {
		return nil, r.err
	}
	slots := make([]core.Slot, nslots)
	for i := range slots {
		kind := r.u8()
		s := core.Slot{DType: core.DType(r.u8()), Order: core.Order(r.u8()), Swap: r.u8() != 0, Batch: -1, Node: -1}
		ndim := int(r.u32())
		s.Bytes, s.Offset = r.i64(), r.i64()
		batch, item := r.i64(), r.i64()
		if r.err == nil && ndim > core.MaxDims {
			r.fail()
		}
		if r.err != nil {
			return nil, r.err
		}
		s.Shape = make([]int, ndim)
		for j := range s.Shape {
			n := r.i64()
			if n < 0 || n > math.MaxInt64/2 {
				r.fail()
			}
			s.Shape[j] = int(n)
		}
		if r.err != nil {
			return nil, r.err
		}
		if !checkSlot(&s, kind, len(msg), batch, item, nbatches) {
			return nil, abi.Errorf(core.KindInvalid, "malformed plan layout: slot %d (kind %d, %+v) is inconsistent", i, kind, s)
		}
		switch {
		case kind == slotRef:
			s.Batch, s.Item, s.Node, s.Offset = int(batch), int(item), s.Offset, -1
		case s.Offset >= 0:
			s.Inline = msg[s.Offset : s.Offset+s.Bytes : s.Offset+s.Bytes]
		}
		slots[i] = s
	}
	p.Plan.Slots = slots
	p.Plan.Batches = make([]core.BatchRef, nbatches)
	for i := range p.Plan.Batches {
		p.Plan.Batches[i] = r.batchRef()
		if r.err != nil {
			return nil, r.err
		}
	}
	if r.err == nil && r.off != len(b) {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	return p, nil
}

// checkSlot reports whether s, of kind, is consistent: its byte length
// from its dtype and shape, its bytes in a message of msgLen bytes or in
// one of nbatches batches.
func checkSlot(s *core.Slot, kind uint8, msgLen int, batch, item int64, nbatches int) bool {
	if s.Order > core.ColumnMajor || s.Bytes < 0 {
		return false
	}
	inMessage := s.Offset >= 0 && s.Offset <= int64(msgLen) && s.Bytes <= int64(msgLen)-s.Offset
	switch kind {
	case slotString:
		return s.DType == core.DTypeInvalid && len(s.Shape) == 0 && !s.Swap && (inMessage || s.Offset == -1)
	case slotInline:
		n, err := core.ByteLen(s.DType, s.Shape)
		return err == nil && n == s.Bytes && inMessage
	case slotRef:
		n, err := core.ByteLen(s.DType, s.Shape)
		return err == nil && n == s.Bytes && !s.Swap && s.Offset >= -1 && s.Offset < int64(msgLen) &&
			batch >= 0 && batch < int64(nbatches) && item >= 0 && item <= math.MaxInt32
	}
	return false
}
