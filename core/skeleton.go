package core

import (
	"bytes"
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
//     fields, so no side table is needed;
//   - envelopes, ref nodes and RFC 8746 arrays do not appear.
//
// The skeleton tags are never valid in a message: a message decoder
// reports them as unknown tags.
const (
	tagSkelFloat16 = 0x56430100 // uint: the bits of a float16 scalar
	tagSkelFloat32 = 0x56430101 // uint: the bits of a float32 scalar
	tagSkelPairs   = 0x56430102 // [key, value, key, value, ...]: a Map
	tagSkelArray   = 0x56430103 // [dtype, shape, order, data]: an inline array
	tagSkelLazyRef = 0x56430104 // [source, ref_id, token, items, bytes, item, dtype, shape, order]
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
// descriptor inline.
func (e *encoder) encodeSkelLazyRef(l *LazyRef) error {
	if err := checkLazyRef(l); err != nil {
		return err
	}
	b := l.Batch
	if !utf8.ValidString(b.Source) {
		return errorf(KindInvalid, "lazy ref source %q is not valid UTF-8", b.Source)
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelLazyRef)
	n := uint64(9)
	if b.Holder != "" {
		n = 10
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, n)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(b.Source)))
	e.buf = append(e.buf, b.Source...)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, uint64(len(b.RefID)))
	e.buf = append(e.buf, b.RefID[:]...)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, TokenSize)
	e.buf = append(e.buf, b.Token[:]...)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(b.Items))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(b.Bytes))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(l.Item))
	name := l.DType.String()
	e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(name)))
	e.buf = append(e.buf, name...)
	e.appendShape(l.Shape)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(wireOrder(l.Shape, l.Order)))
	if b.Holder != "" {
		e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(b.Holder)))
		e.buf = append(e.buf, b.Holder...)
	}
	return nil
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
		err = errorAt(KindProtocol, off, "a ref node in a skeleton: lazy refs cross with their batch descriptor (tag %d)", tagSkelLazyRef)
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
	seen := make(map[string]struct{}, n/2)
	for range n / 2 {
		koff := d.r.Off
		k, err := d.value(0)
		if err != nil {
			return nil, err
		}
		v, err := d.value(0)
		if err != nil {
			return nil, err
		}
		enc, err := appendKey(nil, k)
		if err != nil {
			return nil, errorAt(KindProtocol, koff, "map key of type %T is not an integer, string, byte string, bool or nil", k)
		}
		if _, dup := seen[string(enc)]; dup {
			return nil, errorAt(KindSyntax, koff, "duplicate map key %x", enc)
		}
		seen[string(enc)] = struct{}{}
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
// batch's holder last when it has one.
func (d *decoder) skelLazyRef(off int) (*LazyRef, error) {
	h, hoff, err := d.head()
	if err != nil {
		return nil, err
	}
	if h.Major != cbor.MajorArray || (h.Arg != 9 && h.Arg != 10) {
		return nil, errorAt(KindProtocol, hoff, "expected a lazy ref of 9 or 10 items")
	}
	var l LazyRef
	if l.Batch.Source, err = d.text(); err != nil {
		return nil, err
	}
	id, err := d.bytesN(16)
	if err != nil {
		return nil, err
	}
	copy(l.Batch.RefID[:], id)
	tok, err := d.bytesN(TokenSize)
	if err != nil {
		return nil, err
	}
	copy(l.Batch.Token[:], tok)
	items, err := d.uintMax(math.MaxInt32, "batch item count")
	if err != nil {
		return nil, err
	}
	nbytes, err := d.uintMax(math.MaxInt64, "batch byte count")
	if err != nil {
		return nil, err
	}
	item, err := d.uint()
	if err != nil {
		return nil, err
	}
	if l.DType, err = d.dtypeName(); err != nil {
		return nil, err
	}
	if l.Shape, err = d.dims(); err != nil {
		return nil, err
	}
	if l.Order, err = d.order(); err != nil {
		return nil, err
	}
	if h.Arg == 10 {
		hoff = d.r.Off
		if l.Batch.Holder, err = d.text(); err != nil {
			return nil, err
		}
		if l.Batch.Holder == "" {
			return nil, errorAt(KindProtocol, hoff, "a lazy ref's holder is empty (leave it out instead)")
		}
	}
	if item >= items {
		return nil, errorAt(KindProtocol, off, "lazy ref names item %d of a batch of %d", item, items)
	}
	l.Batch.Items, l.Batch.Bytes, l.Item = int(items), int64(nbytes), int(item)
	n, ok := byteLen(l.DType, l.Shape)
	if !ok {
		return nil, errorAt(KindMismatch, off, "shape %v of %s overflows", l.Shape, l.DType)
	}
	if err := d.addBytes(n, off); err != nil {
		return nil, err
	}
	return &l, nil
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
func (m *DecMode) Skeleton(data []byte, arraySlotMin, bytesSlotMin int64) (*Plan, error) {
	if m.opts.Slots {
		return nil, errorf(KindInvalid, "DecMode.Skeleton reads messages; this mode reads skeletons")
	}
	if int64(len(data)) > m.opts.MaxMessageSize {
		return nil, errorf(KindLimit, "message of %d bytes exceeds MaxMessageSize %d", len(data), m.opts.MaxMessageSize)
	}
	if _, err := m.scan(data); err != nil {
		return nil, err
	}
	// The skeleton is about the message's size, less the arrays and byte
	// strings that become slots: start there, within reason.
	buf := make([]byte, 0, min(len(data)+len(data)/4, 4<<20))
	d := &decoder{mode: m, r: cbor.Reader{Data: data}, plan: &Plan{},
		skel: &encoder{mode: skeletonEncMode, buf: buf}, arraySlotMin: arraySlotMin, bytesSlotMin: bytesSlotMin}
	if _, err := d.envelope(); err != nil {
		return nil, err
	}
	d.plan.Batches = d.batches
	d.plan.Skeleton = d.skel.message()
	return d.plan, nil
}

var skeletonEncMode = MustMode(EncOptions{Slots: true, MaxDepth: MaxDepthLimit}.EncMode())

// emit writes one item of a message's body into the skeleton d.skel: the
// checks and errors of value, without the Go value.
func (d *decoder) emit(depth int) error {
	e := d.skel
	h, off, err := d.head()
	if err != nil {
		return err
	}
	switch h.Major {
	case cbor.MajorUint, cbor.MajorNeg:
		e.buf = cbor.AppendHead(e.buf, h.Major, h.Arg)
	case cbor.MajorBytes, cbor.MajorText:
		b, err := d.r.ReadN(h.Arg)
		if err != nil {
			return d.syntax(off, err)
		}
		if h.Major == cbor.MajorBytes && d.bytesSlotMin > 0 && int64(len(b)) >= d.bytesSlotMin {
			d.emitSlot(d.plan.add(Slot{Bytes: int64(len(b)), Inline: b, Offset: int64(d.r.Off - len(b)), Batch: -1, off: int64(off)}))
			return nil
		}
		e.buf = cbor.AppendHead(e.buf, h.Major, uint64(len(b)))
		e.appendPayload(b)
	case cbor.MajorArray:
		if h.Arg > uint64(d.r.Remaining()) {
			return d.syntax(off, cbor.ErrTruncated)
		}
		e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, h.Arg)
		for range h.Arg {
			if err := d.emit(depth + 1); err != nil {
				return err
			}
		}
	case cbor.MajorMap:
		return d.emitMap(h.Arg, off, depth+1)
	case cbor.MajorTag:
		return d.emitTagged(h.Arg, off, depth+1)
	default:
		if h.AI == cbor.AIFloat64 { // the common float: no Go value needed
			e.buf = cbor.AppendFloat64(e.buf, math.Float64frombits(h.Arg))
			return nil
		}
		v, err := d.simple(h, off)
		if err != nil {
			return err
		}
		return e.encode(v, 0)
	}
	return nil
}

func (d *decoder) emitSlot(i SlotIndex) {
	e := d.skel
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, TagSlot)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(i))
}

// emitMap writes a map of n pairs: as a map while its keys are text, and
// as tag tagSkelPairs once a key is not. Keys are checked as mapValue
// checks them, in the same order; text keys in canonical order need no
// set to tell that none repeats.
func (d *decoder) emitMap(n uint64, off int, depth int) error {
	if 2*n > uint64(d.r.Remaining()) {
		return d.syntax(off, cbor.ErrTruncated)
	}
	e := d.skel
	start, parts, first := len(e.buf), len(e.parts), d.r.Off
	e.buf = cbor.AppendHead(e.buf, cbor.MajorMap, n)
	var prev []byte
	var seen map[string]struct{} // encoded keys, once order alone cannot tell
	pairs := false
	for i := uint64(0); i < n; i++ {
		koff := d.r.Off
		if !pairs && d.r.Remaining() > 0 && d.r.Data[koff]>>5 == cbor.MajorText {
			h, _, err := d.head()
			if err != nil {
				return err
			}
			k, err := d.r.ReadN(h.Arg)
			if err != nil {
				return d.syntax(koff, err)
			}
			e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(k)))
			e.buf = append(e.buf, k...)
			if err := d.emit(depth); err != nil {
				return err
			}
			if seen == nil && (i == 0 || textLess(prev, k)) {
				prev = k
				continue
			}
			if seen == nil {
				seen = d.textKeysAt(first, i)
			}
			enc := string(cbor.AppendHead(nil, cbor.MajorText, uint64(len(k)))) + string(k)
			if _, dup := seen[enc]; dup {
				return errorAt(KindSyntax, koff, "duplicate map key %q", k)
			}
			seen[enc] = struct{}{}
			continue
		}
		if !pairs { // the first key that is not text: a Map
			pairs = true
			if seen == nil {
				seen = d.textKeysAt(first, i)
			}
			e.reheadPairs(start, parts, n)
		}
		k, err := d.value(depth)
		if err != nil {
			return err
		}
		enc, kerr := appendKey(nil, k)
		e.buf = append(e.buf, enc...)
		if err := d.emit(depth); err != nil {
			return err
		}
		if kerr != nil {
			return errorAt(KindProtocol, koff, "map key of type %T is not an integer, string, byte string, bool or nil", k)
		}
		if _, dup := seen[string(enc)]; dup {
			return errorAt(KindSyntax, koff, "duplicate map key %x", enc)
		}
		seen[string(enc)] = struct{}{}
	}
	return nil
}

// textLess reports whether text key a sorts before b as encoded keys do:
// shorter first, then bytewise.
func textLess(a, b []byte) bool {
	return len(a) < len(b) || len(a) == len(b) && bytes.Compare(a, b) < 0
}

// textKeysAt returns the encodings of the n text keys of the map whose
// first key is at off (already checked: they are text).
func (d *decoder) textKeysAt(off int, n uint64) map[string]struct{} {
	r := cbor.Reader{Data: d.r.Data, Off: off}
	seen := make(map[string]struct{}, n)
	for range n {
		h, _ := r.ReadHead()
		k, _ := r.ReadN(h.Arg)
		seen[string(cbor.AppendHead(nil, cbor.MajorText, uint64(len(k))))+string(k)] = struct{}{}
		_ = d.mode.scanItem(&r, 0, new(int)) // the value
	}
	return seen
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

// emitTagged writes the content of tag (already read at off): the checks
// of tagged.
func (d *decoder) emitTagged(tag uint64, off int, depth int) error {
	e := d.skel
	switch tag {
	case tagBignumPos, tagBignumNeg:
		v, err := d.bignum(tag, off)
		if err != nil {
			return err
		}
		return e.encode(v, 0)
	case tagArrayRow, tagArrayColumn:
		data, shape, order, err := d.ndarrayParts(tag)
		if err != nil {
			return err
		}
		return d.emitArray(data, shape, order, off)
	case TagObject:
		if err := d.expectArray(2); err != nil {
			return err
		}
		name, err := d.typeName()
		if err != nil {
			return err
		}
		e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, TagObject)
		e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 2)
		e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(name)))
		e.buf = append(e.buf, name...)
		return d.emit(depth)
	case TagRef:
		v, err := d.refNode(off)
		if err != nil {
			return err
		}
		if l, ok := v.(*LazyRef); ok {
			return e.encodeSkelLazyRef(l)
		}
		d.emitSlot(v.(SlotIndex))
		return nil
	case TagEnvelope:
		return errorAt(KindProtocol, off, "envelope nested inside a message")
	}
	if _, ok := lookupTypedArrayTag(tag); ok || isTypedArrayTag(tag) {
		data, err := d.typedArray(tag, off)
		if err != nil {
			return err
		}
		return d.emitArray(data, []int{len(data.bytes) / data.dtype.Size()}, RowMajor, off)
	}
	return unknownTag(tag, off)
}

// emitArray checks an inline array and writes it as a slot, or inside
// the skeleton when it is shorter than arraySlotMin.
func (d *decoder) emitArray(data typedData, dims []int, order Order, off int) error {
	n, err := d.checkArray(data, dims, off)
	if err != nil {
		return err
	}
	if int64(n) >= d.arraySlotMin {
		d.emitSlot(d.plan.add(Slot{DType: data.dtype, Shape: dims, Order: order, Bytes: int64(n),
			Inline: data.bytes, Offset: int64(data.off), Swap: data.bigEndian, Batch: -1, off: int64(off)}))
		return nil
	}
	e := d.skel
	if len(dims) == 0 && !data.bigEndian {
		e.appendSkelArray0(data.dtype, data.bytes)
		return nil
	}
	if len(dims) == 0 {
		b := make([]byte, n)
		swapInto(b, data.bytes, data.dtype.Size())
		e.appendSkelArray0(data.dtype, b)
		return nil
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelArray)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 4)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(data.dtype))
	e.appendShape(dims)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(wireOrder(dims, order)))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, n)
	if data.bigEndian {
		e.buf = slices.Grow(e.buf, int(n))
		swapInto(e.buf[len(e.buf):len(e.buf)+int(n)], data.bytes, data.dtype.Size())
		e.buf = e.buf[:len(e.buf)+int(n)]
	} else {
		e.appendPayload(data.bytes)
	}
	return nil
}
