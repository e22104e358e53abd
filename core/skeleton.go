// For the bindings in internal/abi and wasm; Go users do not need this
// file: the skeleton, in which a binding passes values across its
// foreign-function boundary, and DecMode.Skeleton.

package core

import (
	"math"
	"slices"
	"unicode/utf8"

	"github.com/viacodec/viacodec/core/internal/cbor"
)

// A skeleton is how a binding passes a value across a foreign-function
// boundary (docs/wire-format.md §4.1): the value alone, without envelope
// or side table, in a form that a generic CBOR library reads and writes
// without losing anything, so that a binding needs no wire-format rule of
// its own. EncOptions.Slots writes one and DecOptions.Slots reads one.
//
// It is CBOR as a message is, except:
//   - a float of any width is a float64; float16 and float32 scalars are
//     tags around their bits;
//   - a map whose keys are not all text is a tag around a flat list of
//     keys and values (a generic decoder would merge keys such as 1 and
//     true);
//   - an array is a slot (the caller's memory, tag TagSlot) or, inline, a
//     tag around [dtype number, shape, order, data]; a 0-d array, the
//     commonest small one, is tag tagSkelArray0 plus its dtype number
//     around its element's bytes;
//   - a lazy ref is a tag around its batch descriptor and its ref node's
//     fields, so no side table is needed; once a batch has crossed so,
//     later lazy refs of it name it by number instead (skelBatches);
//   - envelopes, ref nodes and RFC 8746 arrays do not appear.
//
// The skeleton tags are never valid in a message: a message decoder
// reports them as unknown tags.
const (
	tagSkelFloat16 = 0x56430100 // uint: the bits of a float16 scalar
	tagSkelFloat32 = 0x56430101 // uint: the bits of a float32 scalar
	tagSkelPairs   = 0x56430102 // [key, value, key, value, ...]: a Map
	tagSkelArray   = 0x56430103 // [dtype, shape, order, data]: an inline array
	tagSkelLazyRef = 0x56430104 // [source, ref_id, token, items, bytes, item, dtype, shape, order, ?holder] or [batch, item, dtype, shape, order]
	tagSkelArray0  = 0x56430180 // plus a dtype number: bstr, a 0-d array's element
)

// isSkeletonTag reports whether tag is one of the skeleton's own tags.
func isSkeletonTag(tag uint64) bool {
	return tag == TagSlot || (tag >= tagSkelFloat16 && tag <= tagSkelLazyRef) ||
		(tag > tagSkelArray0 && tag < tagSkelArray0+uint64(dtypeCount))
}

// ---- Encoding ----

// encodeSkelArray writes a as tag tagSkelArray [dtype, shape, order,
// data], or a 0-d array as tag tagSkelArray0+dtype around its element.
func (e *encoder) encodeSkelArray(a *Array) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if len(a.Shape) == 0 {
		e.appendSkelArray0(a.DType, a.Data)
		return nil
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelArray)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 4)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(a.DType))
	e.appendShape(a.Shape)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(wireOrder(a.Shape, a.Order)))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, uint64(len(a.Data)))
	e.appendPayload(a.Data)
	return nil
}

// appendSkelArray0 writes a 0-d array of dt whose element is b.
func (e *encoder) appendSkelArray0(dt DType, b []byte) {
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelArray0+uint64(dt))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// encodeSkelLazyRef writes l as tag tagSkelLazyRef with its batch
// descriptor inline, or by number once the descriptor was written.
func (e *encoder) encodeSkelLazyRef(l *LazyRef) error {
	if err := checkLazyRef(l); err != nil {
		return err
	}
	n, ok := e.skel.numbered(l.Batch)
	if !ok {
		if !utf8.ValidString(l.Batch.Source) {
			return errorf(KindInvalid, "lazy ref source %q is not valid UTF-8", l.Batch.Source)
		}
		e.skel.add(l.Batch)
		n = -1
	}
	e.startSkelLazy(n, &l.Batch)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(l.Item))
	name := l.DType.String()
	e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(name)))
	e.buf = append(e.buf, name...)
	e.appendShape(l.Shape)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(wireOrder(l.Shape, l.Order)))
	e.endSkelLazy(n, &l.Batch)
	return nil
}

// startSkelLazy writes the start of a lazy ref of batch b: b by its
// number n in the skeleton, or in full for n < 0. The ref's item, dtype,
// shape and order follow, then endSkelLazy.
func (e *encoder) startSkelLazy(n int, b *BatchRef) {
	if n >= 0 {
		e.buf = append(e.buf, skelLazyByNumber...)
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(n))
		return
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelLazyRef)
	fields := uint64(9)
	if b.Holder != "" {
		fields = 10
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, fields)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(b.Source)))
	e.buf = append(e.buf, b.Source...)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, uint64(len(b.RefID)))
	e.buf = append(e.buf, b.RefID[:]...)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, TokenSize)
	e.buf = append(e.buf, b.Token[:]...)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(b.Items))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(b.Bytes))
}

// skelLazyByNumber is the start of a lazy ref that names its batch by
// number: its tag and the head of its list of 5.
var skelLazyByNumber = cbor.AppendHead(cbor.AppendHead(nil, cbor.MajorTag, tagSkelLazyRef), cbor.MajorArray, 5)

// endSkelLazy ends a lazy ref startSkelLazy began.
func (e *encoder) endSkelLazy(n int, b *BatchRef) {
	if n < 0 && b.Holder != "" {
		e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(b.Holder)))
		e.buf = append(e.buf, b.Holder...)
	}
}

// skelBatches are the distinct batch descriptors a skeleton's lazy refs
// carried in full, in the order they first came: a lazy ref names one by
// its number here (docs/wire-format.md §4.1). Go writes each in full
// once; a descriptor in full again keeps its number.
type skelBatches struct {
	full   []BatchRef
	number map[BatchRef]int // the number of each
	cache  int              // the number found or added last, +1
}

// numbered returns the number of b, if it was written in full.
func (s *skelBatches) numbered(b BatchRef) (int, bool) {
	if s.cache > 0 && s.full[s.cache-1] == b { // most refs are of the batch before
		return s.cache - 1, true
	}
	n, ok := s.number[b]
	if ok {
		s.cache = n + 1
	}
	return n, ok
}

// add numbers b, written in full.
func (s *skelBatches) add(b BatchRef) {
	if s.number == nil {
		s.number = map[BatchRef]int{}
	}
	s.full = append(s.full, b)
	s.number[b] = len(s.full) - 1
	s.cache = len(s.full)
}

// checkLazyRef checks what encoding a lazy ref relies on.
func checkLazyRef(l *LazyRef) error {
	if l == nil {
		return errorf(KindInvalid, "nil *LazyRef")
	}
	if l.Item < 0 || l.Item >= l.Batch.Items {
		return errorf(KindInvalid, "lazy ref item %d is outside its batch of %d items", l.Item, l.Batch.Items)
	}
	if err := checkDims(uint64(len(l.Shape)), -1); err != nil {
		return err
	}
	if _, ok := byteLen(l.DType, l.Shape); !ok || !l.DType.Valid() || l.Order > ColumnMajor {
		return errorf(KindMismatch, "lazy ref %s %v is not a valid array", l.DType, l.Shape)
	}
	if !utf8.ValidString(l.Batch.Holder) {
		return errorf(KindInvalid, "lazy ref holder %q is not valid UTF-8", l.Batch.Holder)
	}
	return nil
}

// encodeSkelPairs writes a Map as tag tagSkelPairs around its keys and
// values, sorted by encoded key as a message's map is.
func (e *encoder) encodeSkelPairs(pairs Map, depth int) error {
	sorted, err := sortPairs(pairs)
	if err != nil {
		return err
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelPairs)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 2*uint64(len(sorted)))
	for _, p := range sorted {
		e.buf = append(e.buf, p.key...)
		if err := e.encode(p.val, depth); err != nil {
			return err
		}
	}
	return nil
}

// ---- Decoding ----

// skelTagged decodes the content of a skeleton's tag; ok is false for a
// tag a skeleton shares with messages (bignums, typed objects).
func (d *decoder) skelTagged(tag uint64, off int) (v any, ok bool, err error) {
	switch tag {
	case TagSlot:
		v, err = d.slotIndex(off)
	case tagSkelFloat16:
		var bits uint64
		if bits, err = d.uintMax(math.MaxUint16, "float16 bits"); err == nil {
			v = Float16(bits)
		}
	case tagSkelFloat32:
		var bits uint64
		if bits, err = d.uintMax(math.MaxUint32, "float32 bits"); err == nil {
			v = math.Float32frombits(uint32(bits))
		}
	case tagSkelPairs:
		v, err = d.skelPairs(off)
	case tagSkelArray:
		v, err = d.skelArray(off)
	case tagSkelLazyRef:
		v, err = d.skelLazyRef(off)
	case TagRef:
		err = errorAt(KindProtocol, off, "a ref node in a skeleton: lazy refs cross as tag %d", tagSkelLazyRef)
	case TagEnvelope:
		err = errorAt(KindProtocol, off, "an envelope in a skeleton")
	default:
		if !isSkeletonTag(tag) {
			return nil, false, nil
		}
		v, err = d.skelArray0(DType(tag-tagSkelArray0), off)
	}
	return v, true, err
}

// skelArray0 reads the element of a 0-d array of dt.
func (d *decoder) skelArray0(dt DType, off int) (*Array, error) {
	data, _, err := d.byteString(KindMismatch, "0-d array element is not a byte string")
	if err != nil {
		return nil, err
	}
	data = append([]byte{}, data...) // a copy, as skelArray's
	a := &Array{DType: dt, Shape: []int{}, Data: data}
	if err := a.Validate(); err != nil {
		return nil, &Error{Kind: KindOf(err), Offset: int64(off), Msg: "0-d array", Err: err}
	}
	if err := d.addBytes(uint64(len(data)), off); err != nil {
		return nil, err
	}
	return a, nil
}

// slotIndex reads the content of tag TagSlot.
func (d *decoder) slotIndex(off int) (SlotIndex, error) {
	n, err := d.uint()
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt32 {
		return 0, errorAt(KindProtocol, off, "slot index %d is out of range", n)
	}
	return SlotIndex(n), nil
}

// uintMax reads an unsigned integer of at most max.
func (d *decoder) uintMax(max uint64, what string) (uint64, error) {
	off := d.r.Off
	n, err := d.uint()
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, errorAt(KindProtocol, off, "%s %d do not fit", what, n)
	}
	return n, nil
}

// skelPairs reads the flat list of a Map's keys and values.
func (d *decoder) skelPairs(off int) (Map, error) {
	loff := d.r.Off
	n, err := d.arrayHead()
	if err != nil {
		return nil, err
	}
	if n%2 != 0 {
		return nil, errorAt(KindProtocol, loff, "a map's pairs are a list of %d items, not of keys and values", n)
	}
	if n > uint64(d.r.Remaining()) {
		return nil, d.syntax(loff, cbor.ErrTruncated)
	}
	pairs := make(Map, 0, n/2)
	keys := mapKeys{seen: make(map[string]struct{}, n/2), mixed: true}
	for range n / 2 {
		k, v, err := d.pair(&keys)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, Pair{k, v})
	}
	return pairs, nil
}

// skelArray reads [dtype, shape, order, data], an inline array.
func (d *decoder) skelArray(off int) (*Array, error) {
	if err := d.expectArray(4); err != nil {
		return nil, err
	}
	dt, err := d.uintMax(math.MaxUint8, "dtype")
	if err != nil {
		return nil, err
	}
	if !DType(dt).Valid() {
		return nil, errorAt(KindMismatch, off, "invalid dtype %d", dt)
	}
	shape, err := d.dims()
	if err != nil {
		return nil, err
	}
	order, err := d.order()
	if err != nil {
		return nil, err
	}
	data, _, err := d.byteString(KindMismatch, "inline array data is not a byte string")
	if err != nil {
		return nil, err
	}
	// Always a copy, ZeroCopy or not: an array may go by reference, and a
	// batch outlives the skeleton, which the caller frees after the call.
	data = append([]byte{}, data...)
	a := &Array{DType: DType(dt), Shape: shape, Order: order, Data: data}
	if err := a.Validate(); err != nil {
		return nil, &Error{Kind: KindOf(err), Offset: int64(off), Msg: "inline array", Err: err}
	}
	if err := d.addBytes(uint64(len(data)), off); err != nil {
		return nil, err
	}
	return a, nil
}

// skelLazyRef reads a lazy ref with its batch descriptor inline, and the
// batch's holder last when it has one, or by its number.
func (d *decoder) skelLazyRef(off int) (*LazyRef, error) {
	l := d.newLazyRef()
	full := uint64(0) // a lazy ref in full: its 9 or 10 fields
	noff := d.r.Off + 1
	f, ok := d.refFieldsFast()
	if ok { // by number, of the commonest form
		var err error
		if l.Batch, err = d.skelBatchNumbered(f.batch, noff); err != nil {
			return nil, err
		}
	} else if err := d.skelLazyFields(l, &f, &full); err != nil {
		return nil, err
	}
	if full != 0 {
		if _, ok := d.skelBatches.numbered(l.Batch); !ok {
			d.skelBatches.add(l.Batch)
		}
	}
	if f.item >= uint64(l.Batch.Items) {
		return nil, errorAt(KindProtocol, off, "lazy ref names item %d of a batch of %d", f.item, l.Batch.Items)
	}
	l.Item, l.DType, l.Shape, l.Order = int(f.item), f.dtype, f.shape, f.order
	n, ok := byteLen(l.DType, l.Shape)
	if !ok {
		return nil, errorAt(KindMismatch, off, "shape %v of %s overflows", l.Shape, l.DType)
	}
	if err := d.addBytes(n, off); err != nil {
		return nil, err
	}
	return l, nil
}

// skelLazyFields reads a lazy ref's list of fields, of any form, into l's
// batch and f, and how many fields it has into *full when it has its
// batch in full (9 or 10, the holder last).
func (d *decoder) skelLazyFields(l *LazyRef, f *refFields, full *uint64) error {
	h, hoff, err := d.head()
	if err != nil {
		return err
	}
	if h.Major != cbor.MajorArray || (h.Arg != 5 && h.Arg != 9 && h.Arg != 10) {
		return errorAt(KindProtocol, hoff, "expected a lazy ref of 5, 9 or 10 items")
	}
	if h.Arg == 5 {
		noff := d.r.Off
		n, err := d.uint()
		if err != nil {
			return err
		}
		if l.Batch, err = d.skelBatchNumbered(n, noff); err != nil {
			return err
		}
	} else if err := d.skelBatchFields(&l.Batch); err != nil {
		return err
	}
	if f.item, err = d.uint(); err != nil {
		return err
	}
	if f.dtype, err = d.dtypeName(); err != nil {
		return err
	}
	if f.shape, err = d.dims(); err != nil {
		return err
	}
	if f.order, err = d.order(); err != nil {
		return err
	}
	if h.Arg == 10 {
		hoff = d.r.Off
		if l.Batch.Holder, err = d.text(); err != nil {
			return err
		}
		if l.Batch.Holder == "" {
			return errorAt(KindProtocol, hoff, "a lazy ref's holder is empty (leave it out instead)")
		}
	}
	if h.Arg != 5 {
		*full = h.Arg
	}
	return nil
}

// skelBatchNumbered returns the batch a lazy ref names by number n (at
// noff).
func (d *decoder) skelBatchNumbered(n uint64, noff int) (BatchRef, error) {
	if n >= uint64(len(d.skelBatches.full)) {
		return BatchRef{}, errorAt(KindProtocol, noff, "a lazy ref names batch %d of the %d before it", n, len(d.skelBatches.full))
	}
	return d.skelBatches.full[n], nil
}

// skelBatchFields reads the fields of a lazy ref in full that describe its
// batch, but the holder: source, ref_id, token, items, bytes.
func (d *decoder) skelBatchFields(b *BatchRef) error {
	var err error
	if b.Source, err = d.text(); err != nil {
		return err
	}
	id, err := d.bytesN(16)
	if err != nil {
		return err
	}
	copy(b.RefID[:], id)
	tok, err := d.bytesN(TokenSize)
	if err != nil {
		return err
	}
	copy(b.Token[:], tok)
	items, err := d.uintMax(math.MaxInt32, "batch item count")
	if err != nil {
		return err
	}
	nbytes, err := d.uintMax(math.MaxInt64, "batch byte count")
	if err != nil {
		return err
	}
	b.Items, b.Bytes = int(items), int64(nbytes)
	return nil
}

// ---- A message's skeleton, written straight from its bytes ----

// Skeleton decodes a message as Plan does, with the same checks, limits
// and errors, but writes its body as a binding's skeleton (Plan.Skeleton;
// Body is nil) instead of building Go values: the path of a foreign
// caller, which reads the skeleton with a generic CBOR library. Arrays
// become slots, except inline ones of fewer than arraySlotMin bytes,
// which cross inside the skeleton; byte strings of bytesSlotMin bytes or
// more (0: none) become slots too, of DType DTypeInvalid. With
// PassThrough, references are lazy refs in the skeleton; otherwise they
// are slots to download. Slots are numbered in the order the skeleton
// names them.
//
// Unless stop is nil, the walk calls it every few thousand items (4096)
// and every MiB of text it checks, and ends with its error, as it is,
// once it returns one: how a binding
// that runs the walk where no context reaches it (a wasm guest) stops a
// long one.
//
// It is the walk of Plan with the skeleton as its output (decoder): the
// rest of this section is only how that output writes what the walk has
// read and checked.
func (m *DecMode) Skeleton(data []byte, arraySlotMin, bytesSlotMin int64, stop func() error) (*Plan, error) {
	if m.opts.Slots {
		return nil, errorf(KindInvalid, "DecMode.Skeleton reads messages; this mode reads skeletons")
	}
	return m.walk(data, &decoder{skel: &encoder{mode: skeletonEncMode}, skelWalk: true, arraySlotMin: arraySlotMin, bytesSlotMin: bytesSlotMin, poller: poller{stop: stop}})
}

var skeletonEncMode = MustMode(EncOptions{Slots: true, MaxDepth: MaxDepthLimit}.EncMode())

// appendSlot writes slot i.
func (e *encoder) appendSlot(i SlotIndex) {
	if n := len(e.buf); cap(e.buf)-n >= 10 { // within capacity: no write barrier (refOut)
		e.buf = e.buf[:n+5]
		b := e.buf[n:]
		b[0], b[1], b[2], b[3], b[4] = 0xda, 0x56, 0x43, 0x00, 0x03 // TagSlot
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(i))
		return
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, TagSlot)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(i))
}

// emitString writes a byte or text string b (its head at off) into the
// skeleton: a byte string of bytesSlotMin bytes or more as a slot.
func (d *decoder) emitString(major byte, b []byte, off int) {
	e := d.skel
	if major == cbor.MajorBytes && d.bytesSlotMin > 0 && int64(len(b)) >= d.bytesSlotMin {
		e.appendSlot(d.plan.add(Slot{Bytes: int64(len(b)), Inline: b, Offset: int64(d.r.Off - len(b)), Batch: -1, Node: int64(off)}))
		return
	}
	e.buf = cbor.AppendHead(e.buf, major, uint64(len(b)))
	e.appendPayload(b)
}

// reheadPairs turns the map head written at start into the head of tag
// tagSkelPairs around a list of 2n items, moving what follows it.
func (e *encoder) reheadPairs(start, parts int, n uint64) {
	old := len(cbor.AppendHead(nil, cbor.MajorMap, n))
	head := cbor.AppendHead(nil, cbor.MajorTag, tagSkelPairs)
	head = cbor.AppendHead(head, cbor.MajorArray, 2*n)
	tail := slices.Clone(e.buf[start+old:])
	e.buf = append(append(e.buf[:start], head...), tail...)
	for j := parts; j < len(e.parts); j++ {
		e.parts[j].to += len(head) - old
	}
}

// appendInlineArray writes inline array data, already checked against
// dims, as tag tagSkelArray [dtype, shape, order, data] in little-endian
// order, or a 0-d array as tag tagSkelArray0+dtype around its element.
func (e *encoder) appendInlineArray(data typedData, dims []int, order Order) {
	n := len(data.bytes)
	if len(dims) == 0 && !data.bigEndian {
		e.appendSkelArray0(data.dtype, data.bytes)
		return
	}
	if len(dims) == 0 {
		b := make([]byte, n)
		swapInto(b, data.bytes, data.dtype.Size())
		e.appendSkelArray0(data.dtype, b)
		return
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelArray)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 4)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(data.dtype))
	e.appendShape(dims)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(wireOrder(dims, order)))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, uint64(n))
	if data.bigEndian {
		e.buf = slices.Grow(e.buf, n)
		swapInto(e.buf[len(e.buf):len(e.buf)+n], data.bytes, data.dtype.Size())
		e.buf = e.buf[:len(e.buf)+n]
	} else {
		e.appendPayload(data.bytes)
	}
}
