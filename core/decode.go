package core

import (
	"context"
	"math"
	"math/big"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/viacodec/viacodec/core/internal/cbor"
)

// Decode decodes a message, downloading referenced arrays through the
// mode's Fetcher. On any error it returns no value.
func (m *DecMode) Decode(data []byte) (any, error) {
	return m.DecodeContext(context.Background(), data)
}

// DecodeContext is Decode with a context that cancels downloads. It is
// Plan, then the arrays placed in Go memory (or the Allocator's), then one
// FetchAll of the referenced ones.
func (m *DecMode) DecodeContext(ctx context.Context, data []byte) (any, error) {
	if m.opts.Slots { // a skeleton: its slots are the caller's to fill
		p, err := m.planWith(data, false)
		if err != nil {
			return nil, err
		}
		return p.Body, nil
	}
	p, err := m.planWith(data, true)
	if err != nil {
		return nil, err
	}
	return m.place(ctx, p)
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

// planWith is Plan; with recompose, registered typed objects become
// deferred objects that place recomposes.
func (m *DecMode) planWith(data []byte, recompose bool) (*Plan, error) {
	if int64(len(data)) > m.opts.MaxMessageSize {
		return nil, errorf(KindLimit, "message of %d bytes exceeds MaxMessageSize %d", len(data), m.opts.MaxMessageSize)
	}
	// Check well-formedness and limits before building anything.
	arrays, err := m.scan(data)
	if err != nil {
		return nil, err
	}
	d := &decoder{mode: m, r: cbor.Reader{Data: data}, plan: &Plan{Slots: make([]Slot, 0, arrays)}, recompose: recompose}
	var body any
	if m.opts.Slots {
		body, err = d.value(0) // a skeleton: the value alone
	} else {
		body, err = d.envelope()
	}
	if err != nil {
		return nil, err
	}
	d.plan.Body = body
	d.plan.Batches = d.batches
	return d.plan, nil
}

// scan checks that data is exactly one well-formed item within the limits,
// without allocating. It returns a bound on the number of arrays: the
// typed-array and ref-node tags.
func (m *DecMode) scan(data []byte) (arrays int, err error) {
	r := cbor.Reader{Data: data}
	// Depth counts from the body: the envelope's tag and array are free.
	// A skeleton has no envelope.
	depth := -2
	if m.opts.Slots {
		depth = 0
	}
	if err := m.scanItem(&r, depth, &arrays); err != nil {
		return 0, err
	}
	if r.Off != len(data) {
		return 0, errorAt(KindSyntax, r.Off, "%d bytes of trailing data", len(data)-r.Off)
	}
	return arrays, nil
}

// scanItem checks one item, adding to *arrays the tags that make arrays.
func (m *DecMode) scanItem(r *cbor.Reader, depth int, arrays *int) error {
	off := r.Off
	h, err := r.ReadHead()
	if err != nil {
		return errorAt(KindSyntax, off, "%v", err)
	}
	switch h.Major {
	case cbor.MajorBytes, cbor.MajorText:
		if h.Arg > uint64(r.Remaining()) {
			return errorAt(KindSyntax, off, "string of %d bytes but only %d bytes remain", h.Arg, r.Remaining())
		}
		if h.Arg > uint64(m.opts.MaxByteLen) {
			return errorAt(KindLimit, off, "string of %d bytes exceeds MaxByteLen %d", h.Arg, m.opts.MaxByteLen)
		}
		b, _ := r.ReadN(h.Arg)
		if h.Major == cbor.MajorText && !utf8.Valid(b) {
			return errorAt(KindSyntax, off, "text string is not valid UTF-8")
		}
	case cbor.MajorArray, cbor.MajorMap:
		n := h.Arg
		min := n // every item takes at least one byte
		if h.Major == cbor.MajorMap {
			if n > math.MaxUint64/2 {
				return errorAt(KindSyntax, off, "map of %d pairs but only %d bytes remain", n, r.Remaining())
			}
			min = 2 * n
		}
		if min > uint64(r.Remaining()) {
			return errorAt(KindSyntax, off, "%d items declared but only %d bytes remain", min, r.Remaining())
		}
		if n > uint64(m.opts.MaxElements) && depth >= 0 { // the envelope's lists are free
			return errorAt(KindLimit, off, "%d elements exceed MaxElements %d", n, m.opts.MaxElements)
		}
		if depth >= m.depthLimit {
			return errorAt(KindLimit, off, "nesting exceeds MaxDepth %d", m.opts.MaxDepth)
		}
		for i := uint64(0); i < min; i++ {
			if err := m.scanItem(r, depth+1, arrays); err != nil {
				return err
			}
		}
	case cbor.MajorTag:
		if depth >= m.depthLimit {
			return errorAt(KindLimit, off, "nesting exceeds MaxDepth %d", m.opts.MaxDepth)
		}
		if h.Arg == TagRef || isTypedArrayTag(h.Arg) || (h.Arg >= 0x56430010 && h.Arg <= 0x5643001f) {
			*arrays++
		}
		return m.scanItem(r, depth+1, arrays)
	case cbor.MajorSimple:
		if h.AI == 24 && h.Arg < 32 {
			return errorAt(KindSyntax, off, "simple value %d in two-byte form", h.Arg)
		}
	}
	return nil
}

// decoder builds values from a message that scan has accepted. It still
// checks every read, so that a scan bug cannot turn into a panic.
type decoder struct {
	mode       *DecMode
	r          cbor.Reader
	arrayBytes int64
	plan       *Plan
	recompose  bool // registered typed objects become deferred objects

	batches []BatchRef
	refs    map[[2]int]any // (batch, item) → its SlotIndex or *LazyRef

	// With DecMode.Skeleton: the skeleton the body is written into, and
	// what crosses inside it rather than as a slot.
	skel         *encoder
	arraySlotMin int64
	bytesSlotMin int64
}

// addBytes counts n more array bytes against MaxArrayBytes.
func (d *decoder) addBytes(n uint64, off int) error {
	if n > uint64(d.mode.opts.MaxArrayBytes) || d.arrayBytes+int64(n) > d.mode.opts.MaxArrayBytes {
		return errorAt(KindLimit, off, "array bytes exceed MaxArrayBytes %d", d.mode.opts.MaxArrayBytes)
	}
	d.arrayBytes += int64(n)
	return nil
}

func (d *decoder) syntax(off int, err error) error {
	return errorAt(KindSyntax, off, "%v", err)
}

func (d *decoder) head() (cbor.Head, int, error) {
	off := d.r.Off
	h, err := d.r.ReadHead()
	if err != nil {
		return h, off, d.syntax(off, err)
	}
	return h, off, nil
}

// envelope reads tag TagEnvelope [version, body, batches].
func (d *decoder) envelope() (any, error) {
	h, off, err := d.head()
	if err != nil {
		return nil, err
	}
	if h.Major != cbor.MajorTag || h.Arg != TagEnvelope {
		return nil, errorAt(KindProtocol, off, "not a viacodec message (no envelope tag)")
	}
	if err := d.expectArray(3); err != nil {
		return nil, err
	}
	off = d.r.Off
	version, err := d.uint()
	if err != nil {
		return nil, err
	}
	if version != FormatVersion {
		return nil, errorAt(KindProtocol, off, "unsupported format version %d (this build reads %d)", version, FormatVersion)
	}
	// The side table follows the body, and ref nodes index it: read it
	// first, then come back for the body.
	bodyOff := d.r.Off
	var arrays int
	if err := d.mode.scanItem(&d.r, 0, &arrays); err != nil {
		return nil, err
	}
	if err := d.batchTable(); err != nil {
		return nil, err
	}
	end := d.r.Off
	d.r.Off = bodyOff
	if d.skel != nil {
		if err := d.emit(0); err != nil {
			return nil, err
		}
		d.r.Off = end
		return nil, nil
	}
	body, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.r.Off = end
	return body, nil
}

// batchTable reads the side table of batch descriptors.
func (d *decoder) batchTable() error {
	n, err := d.arrayHead()
	if err != nil {
		return err
	}
	if n > uint64(d.r.Remaining()) {
		return d.syntax(d.r.Off, cbor.ErrTruncated)
	}
	d.batches = make([]BatchRef, 0, n)
	seen := map[[16]byte]bool{}
	for range n {
		off := d.r.Off
		b, err := d.batchRef()
		if err != nil {
			return err
		}
		if seen[b.RefID] {
			return errorAt(KindProtocol, off, "two batch descriptors with ref id %s", b.RefID)
		}
		seen[b.RefID] = true
		d.batches = append(d.batches, b)
	}
	return nil
}

// batchRef reads [source, ref_id, token, items, bytes] or, for a batch
// held elsewhere, [source, ref_id, token, items, bytes, holder].
func (d *decoder) batchRef() (BatchRef, error) {
	var b BatchRef
	h, hoff, err := d.head()
	if err != nil {
		return b, err
	}
	if h.Major != cbor.MajorArray || (h.Arg != 5 && h.Arg != 6) {
		return b, errorAt(KindProtocol, hoff, "expected a batch descriptor of 5 or 6 items")
	}
	if b.Source, err = d.text(); err != nil {
		return b, err
	}
	id, err := d.bytesN(16)
	if err != nil {
		return b, err
	}
	copy(b.RefID[:], id)
	tok, err := d.bytesN(TokenSize)
	if err != nil {
		return b, err
	}
	copy(b.Token[:], tok)
	off := d.r.Off
	items, err := d.uint()
	if err != nil {
		return b, err
	}
	nbytes, err := d.uint()
	if err != nil {
		return b, err
	}
	if items > math.MaxInt32 || nbytes > math.MaxInt64 {
		return b, errorAt(KindProtocol, off, "batch descriptor counts %d items, %d bytes", items, nbytes)
	}
	b.Items, b.Bytes = int(items), int64(nbytes)
	if h.Arg == 6 {
		off = d.r.Off
		if b.Holder, err = d.text(); err != nil {
			return b, err
		}
		if b.Holder == "" {
			return b, errorAt(KindProtocol, off, "a batch descriptor's holder is empty (leave it out instead)")
		}
	}
	return b, nil
}

// refNode reads the content of tag TagRef: [batch, item, dtype, shape, order].
func (d *decoder) refNode(off int) (any, error) {
	if err := d.expectArray(5); err != nil {
		return nil, err
	}
	bi, err := d.uint()
	if err != nil {
		return nil, err
	}
	item, err := d.uint()
	if err != nil {
		return nil, err
	}
	dt, err := d.dtypeName()
	if err != nil {
		return nil, err
	}
	shape, err := d.dims()
	if err != nil {
		return nil, err
	}
	order, err := d.order()
	if err != nil {
		return nil, err
	}
	if bi >= uint64(len(d.batches)) {
		return nil, errorAt(KindProtocol, off, "ref node names batch %d of %d", bi, len(d.batches))
	}
	batch := d.batches[bi]
	if item >= uint64(batch.Items) {
		return nil, errorAt(KindProtocol, off, "ref node names item %d of a batch of %d", item, batch.Items)
	}
	n, ok := byteLen(dt, shape)
	if !ok {
		return nil, errorAt(KindMismatch, off, "shape %v of %s overflows", shape, dt)
	}
	key := [2]int{int(bi), int(item)}
	if v, ok := d.refs[key]; ok { // the same item again: one value, one download
		if !d.sameRef(v, dt, shape, order) {
			return nil, errorAt(KindMismatch, off, "two ref nodes describe item %d of batch %d differently", item, bi)
		}
		return v, nil
	}
	// Declared bytes count against the limit on every path, pass-through
	// included, so that resolving a lazy ref later cannot allocate more.
	if err := d.addBytes(n, off); err != nil {
		return nil, err
	}
	if d.refs == nil {
		d.refs = map[[2]int]any{}
	}
	var v any
	if d.mode.opts.PassThrough {
		v = &LazyRef{Batch: batch, Item: int(item), DType: dt, Shape: shape, Order: order}
	} else {
		v = d.plan.add(Slot{DType: dt, Shape: shape, Order: order, Bytes: int64(n), Offset: -1, Batch: int(bi), Item: int(item), off: int64(off)})
	}
	d.refs[key] = v
	return v, nil
}

func (d *decoder) sameRef(v any, dt DType, shape []int, order Order) bool {
	switch v := v.(type) {
	case SlotIndex:
		s := &d.plan.Slots[v]
		return s.DType == dt && s.Order == order && slices.Equal(s.Shape, shape)
	case *LazyRef:
		return v.DType == dt && v.Order == order && slices.Equal(v.Shape, shape)
	}
	return false
}

func (d *decoder) expectArray(n uint64) error {
	h, off, err := d.head()
	if err != nil {
		return err
	}
	if h.Major != cbor.MajorArray || h.Arg != n {
		return errorAt(KindProtocol, off, "expected an array of %d items", n)
	}
	return nil
}

func (d *decoder) arrayHead() (uint64, error) {
	h, off, err := d.head()
	if err != nil {
		return 0, err
	}
	if h.Major != cbor.MajorArray {
		return 0, errorAt(KindProtocol, off, "expected an array")
	}
	return h.Arg, nil
}

func (d *decoder) uint() (uint64, error) {
	h, off, err := d.head()
	if err != nil {
		return 0, err
	}
	if h.Major != cbor.MajorUint {
		return 0, errorAt(KindProtocol, off, "expected an unsigned integer")
	}
	return h.Arg, nil
}

func (d *decoder) text() (string, error) {
	h, off, err := d.head()
	if err != nil {
		return "", err
	}
	if h.Major != cbor.MajorText {
		return "", errorAt(KindProtocol, off, "expected a text string")
	}
	b, err := d.r.ReadN(h.Arg)
	if err != nil {
		return "", d.syntax(off, err)
	}
	return string(b), nil
}

// typeName reads a typed object's name: a text string, not empty, of
// valid UTF-8, as the encoder writes them, so that whatever decodes
// encodes again.
func (d *decoder) typeName() (string, error) {
	off := d.r.Off
	name, err := d.text()
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errorAt(KindProtocol, off, "typed object name is empty")
	}
	if !utf8.ValidString(name) {
		return "", errorAt(KindSyntax, off, "text string is not valid UTF-8")
	}
	return name, nil
}

// value decodes one item of the body.
func (d *decoder) value(depth int) (any, error) {
	h, off, err := d.head()
	if err != nil {
		return nil, err
	}
	switch h.Major {
	case cbor.MajorUint:
		if h.Arg <= math.MaxInt64 {
			return int64(h.Arg), nil
		}
		return h.Arg, nil
	case cbor.MajorNeg:
		if h.Arg <= math.MaxInt64 {
			return ^int64(h.Arg), nil
		}
		n := new(big.Int).SetUint64(h.Arg)
		return n.Neg(n.Add(n, bigOne)), nil
	case cbor.MajorBytes:
		b, err := d.r.ReadN(h.Arg)
		if err != nil {
			return nil, d.syntax(off, err)
		}
		if d.mode.opts.ZeroCopy {
			return b, nil
		}
		return append([]byte{}, b...), nil
	case cbor.MajorText:
		b, err := d.r.ReadN(h.Arg)
		if err != nil {
			return nil, d.syntax(off, err)
		}
		return string(b), nil
	case cbor.MajorArray:
		if h.Arg > uint64(d.r.Remaining()) {
			return nil, d.syntax(off, cbor.ErrTruncated)
		}
		list := make([]any, h.Arg)
		for i := range list {
			if list[i], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return list, nil
	case cbor.MajorMap:
		return d.mapValue(h.Arg, off, depth+1)
	case cbor.MajorTag:
		return d.tagged(h.Arg, off, depth+1)
	default:
		return d.simple(h, off)
	}
}

func (d *decoder) simple(h cbor.Head, off int) (any, error) {
	switch h.AI {
	case cbor.SimpleFalse:
		return false, nil
	case cbor.SimpleTrue:
		return true, nil
	case cbor.SimpleNull:
		return nil, nil
	case cbor.AIFloat16:
		if d.mode.opts.Slots { // a skeleton's floats are float64s (§4.1)
			return Float16(h.Arg).Float64(), nil
		}
		return Float16(h.Arg), nil
	case cbor.AIFloat32:
		if d.mode.opts.Slots {
			return float64(math.Float32frombits(uint32(h.Arg))), nil
		}
		return math.Float32frombits(uint32(h.Arg)), nil
	case cbor.AIFloat64:
		return math.Float64frombits(h.Arg), nil
	}
	return nil, errorAt(KindProtocol, off, "simple value %d is not in the value model", h.Arg)
}

func (d *decoder) mapValue(n uint64, off int, depth int) (any, error) {
	if 2*n > uint64(d.r.Remaining()) {
		return nil, d.syntax(off, cbor.ErrTruncated)
	}
	strs := make(map[string]any, n)
	var keys []string // text keys in message order, until the map turns into a Map
	var pairs Map
	var seen map[string]struct{} // encoded keys, once the map is a Map
	for i := uint64(0); i < n; i++ {
		koff := d.r.Off
		k, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		if s, ok := k.(string); ok && pairs == nil {
			if _, dup := strs[s]; dup {
				return nil, errorAt(KindSyntax, koff, "duplicate map key %q", s)
			}
			strs[s] = v
			keys = append(keys, s)
			continue
		}
		if pairs == nil { // first key that is not text: switch to a Map
			pairs = make(Map, 0, n)
			seen = make(map[string]struct{}, n)
			for _, s := range keys {
				pairs = append(pairs, Pair{s, strs[s]})
				enc, _ := appendKey(nil, s)
				seen[string(enc)] = struct{}{}
			}
			strs, keys = nil, nil
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
	if pairs != nil {
		return pairs, nil
	}
	return strs, nil
}

func (d *decoder) tagged(tag uint64, off int, depth int) (any, error) {
	if d.mode.opts.Slots {
		if v, ok, err := d.skelTagged(tag, off); ok {
			return v, err
		}
	}
	switch tag {
	case tagBignumPos, tagBignumNeg:
		return d.bignum(tag, off)
	case tagArrayRow, tagArrayColumn:
		return d.ndarray(tag, off)
	case TagObject:
		return d.object(off, depth)
	case TagRef:
		return d.refNode(off)
	case TagEnvelope:
		return nil, errorAt(KindProtocol, off, "envelope nested inside a message")
	}
	if _, ok := lookupTypedArrayTag(tag); ok || isTypedArrayTag(tag) {
		data, err := d.typedArray(tag, off)
		if err != nil {
			return nil, err
		}
		return d.newArray(data, []int{len(data.bytes) / data.dtype.Size()}, RowMajor, off)
	}
	return nil, unknownTag(tag, off)
}

func unknownTag(tag uint64, off int) error {
	if isSkeletonTag(tag) {
		return errorAt(KindUnknownTag, off, "skeleton tag %d: it stands only in a binding's skeleton, never in a message", tag)
	}
	return errorAt(KindUnknownTag, off, "unknown tag %d", tag)
}

func (d *decoder) bignum(tag uint64, off int) (any, error) {
	b, _, err := d.byteString(KindProtocol, "bignum content is not a byte string")
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(b)
	if tag == tagBignumNeg {
		n.Neg(n.Add(n, bigOne))
	}
	switch {
	case n.IsInt64():
		return n.Int64(), nil
	case n.IsUint64():
		return n.Uint64(), nil
	}
	return n, nil
}

func (d *decoder) object(off int, depth int) (any, error) {
	if err := d.expectArray(2); err != nil {
		return nil, err
	}
	name, err := d.typeName()
	if err != nil {
		return nil, err
	}
	data, err := d.value(depth)
	if err != nil {
		return nil, err
	}
	if !d.recompose {
		return Object{Name: name, Data: data}, nil
	}
	t := d.mode.opts.Registry.lookupName(name)
	if t == nil {
		if d.mode.opts.UnknownTypes == UnknownAsError {
			return nil, &Error{Kind: KindUnregistered, Offset: int64(off), Msg: "typed object " + strconv.Quote(name) + " is not registered"}
		}
		return Object{Name: name, Data: data}, nil
	}
	// Its data may hold arrays not yet placed: recompose it after.
	return &deferred{t: t, name: name, data: data, off: int64(off)}, nil
}

// typedData is the payload of a typed array, still in wire byte order.
type typedData struct {
	dtype     DType
	bigEndian bool
	bytes     []byte
	off       int // of bytes in the message
}

// typedArray reads the byte string of typed-array tag tag (already read).
func (d *decoder) typedArray(tag uint64, off int) (typedData, error) {
	t, ok := lookupTypedArrayTag(tag)
	if !ok {
		if tag == 83 || tag == 87 {
			return typedData{}, errorAt(KindMismatch, off, "float128 typed arrays are not supported")
		}
		if isTypedArrayTag(tag) {
			return typedData{}, errorAt(KindUnknownTag, off, "reserved typed-array tag %d", tag)
		}
		return typedData{}, errorAt(KindMismatch, off, "array data has tag %d, not a typed-array tag", tag)
	}
	// Not byteString: its error text would be formatted on every array.
	h, boff, err := d.head()
	if err != nil {
		return typedData{}, err
	}
	if h.Major != cbor.MajorBytes {
		return typedData{}, errorAt(KindMismatch, boff, "typed array (tag %d) does not hold a byte string", tag)
	}
	b, err := d.r.ReadN(h.Arg)
	if err != nil {
		return typedData{}, d.syntax(boff, err)
	}
	if len(b)%t.dtype.Size() != 0 {
		return typedData{}, errorAt(KindMismatch, boff, "%d bytes are not a whole number of %s elements", len(b), t.dtype)
	}
	return typedData{t.dtype, t.bigEndian, b, d.r.Off - len(b)}, nil
}

// ndarray reads the content of tag 40 or 1040: [shape, typed array].
func (d *decoder) ndarray(tag uint64, off int) (any, error) {
	data, shape, order, err := d.ndarrayParts(tag)
	if err != nil {
		return nil, err
	}
	return d.newArray(data, shape, order, off)
}

// ndarrayParts reads the content of tag 40 or 1040 without checking the
// payload against the shape.
func (d *decoder) ndarrayParts(tag uint64) (typedData, []int, Order, error) {
	if err := d.expectArray(2); err != nil {
		return typedData{}, nil, 0, err
	}
	shape, err := d.dims()
	if err != nil {
		return typedData{}, nil, 0, err
	}
	h, toff, err := d.head()
	if err != nil {
		return typedData{}, nil, 0, err
	}
	if h.Major != cbor.MajorTag {
		return typedData{}, nil, 0, errorAt(KindMismatch, toff, "array data is not a typed array")
	}
	data, err := d.typedArray(h.Arg, toff)
	if err != nil {
		return typedData{}, nil, 0, err
	}
	order := RowMajor
	if tag == tagArrayColumn {
		order = ColumnMajor
	}
	return data, shape, order, nil
}

// dims reads an array of dimensions: every shape a message holds, inline,
// referenced or in a skeleton, is read here.
func (d *decoder) dims() ([]int, error) {
	off := d.r.Off
	n, err := d.arrayHead()
	if err != nil {
		return nil, err
	}
	if err := checkDims(n, off); err != nil {
		return nil, err
	}
	if n > uint64(d.r.Remaining()) {
		return nil, d.syntax(d.r.Off, cbor.ErrTruncated)
	}
	shape := make([]int, n)
	for i := range shape {
		off := d.r.Off
		v, err := d.uint()
		if err != nil {
			return nil, err
		}
		if v > math.MaxInt64 {
			return nil, errorAt(KindMismatch, off, "dimension %d overflows", v)
		}
		shape[i] = int(v)
	}
	return shape, nil
}

// order reads 0 (row-major) or 1 (column-major).
func (d *decoder) order() (Order, error) {
	off := d.r.Off
	v, err := d.uint()
	if err != nil {
		return 0, err
	}
	if v > uint64(ColumnMajor) {
		return 0, errorAt(KindProtocol, off, "order %d is neither 0 nor 1", v)
	}
	return Order(v), nil
}

// dtypeName reads a dtype by its numpy name.
func (d *decoder) dtypeName() (DType, error) {
	off := d.r.Off
	name, err := d.text()
	if err != nil {
		return 0, err
	}
	dt, err := ParseDType(name)
	if err != nil {
		return 0, errorAt(KindMismatch, off, "unknown dtype %q", name)
	}
	return dt, nil
}

// byteString reads a byte string, aliasing the input, and the offset of
// its head; any other item is an error of kind k with text notBytes.
func (d *decoder) byteString(k Kind, notBytes string) ([]byte, int, error) {
	h, off, err := d.head()
	if err != nil {
		return nil, off, err
	}
	if h.Major != cbor.MajorBytes {
		return nil, off, errorAt(k, off, "%s", notBytes)
	}
	b, err := d.r.ReadN(h.Arg)
	if err != nil {
		return nil, off, d.syntax(off, err)
	}
	return b, off, nil
}

// bytesN reads a byte string of exactly n bytes, aliasing the input.
func (d *decoder) bytesN(n uint64) ([]byte, error) {
	h, off, err := d.head()
	if err != nil {
		return nil, err
	}
	if h.Major != cbor.MajorBytes || h.Arg != n {
		return nil, errorAt(KindProtocol, off, "expected a byte string of %d bytes", n)
	}
	b, err := d.r.ReadN(n)
	if err != nil {
		return nil, d.syntax(off, err)
	}
	return b, nil
}

// newArray checks data against shape and the limits and adds its slot.
func (d *decoder) newArray(data typedData, dims []int, order Order, off int) (SlotIndex, error) {
	if d.mode.opts.Slots {
		return 0, errorAt(KindProtocol, off, "an RFC 8746 array in a skeleton: arrays cross as slots or with the skeleton's own tag")
	}
	n, err := d.checkArray(data, dims, off)
	if err != nil {
		return 0, err
	}
	return d.plan.add(Slot{DType: data.dtype, Shape: dims, Order: order, Bytes: int64(n),
		Inline: data.bytes, Offset: int64(data.off), Swap: data.bigEndian, Batch: -1, off: int64(off)}), nil
}

// checkArray checks data against shape and the limits and returns its
// byte length.
func (d *decoder) checkArray(data typedData, dims []int, off int) (uint64, error) {
	n, ok := byteLen(data.dtype, dims)
	if !ok {
		return 0, errorAt(KindMismatch, off, "shape %v of %s overflows", dims, data.dtype)
	}
	if n != uint64(len(data.bytes)) {
		return 0, errorAt(KindMismatch, off, "%s shape %v needs %d bytes, data has %d", data.dtype, dims, n, len(data.bytes))
	}
	if err := d.addBytes(n, off); err != nil {
		return 0, err
	}
	if data.dtype == DTypeBool {
		for i, b := range data.bytes {
			if b > 1 {
				return 0, errorAt(KindMismatch, off, "bool element %d is %#x, not 0 or 1", i, b)
			}
		}
	}
	return n, nil
}

// swapInto writes src into dst with each size-byte element reversed.
func swapInto(dst, src []byte, size int) {
	for i := 0; i+size <= len(src); i += size {
		for j := 0; j < size; j++ {
			dst[i+j] = src[i+size-1-j]
		}
	}
}
