package core

import (
	"bytes"
	"io"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core/internal/cbor"
)

// FormatVersion is the envelope version this package writes and reads.
const FormatVersion = 1

// Version is the release of viacodec this core belongs to; the C ABI and
// the Python package report it too.
const Version = "0.1.0"

// inlineCopyMax is the largest array payload copied into the message's own
// buffer; larger payloads stay views of the caller's memory until written.
const inlineCopyMax = 1024

// Message is an encoded message. It holds the small items in its own buffer
// and views of the caller's array data, so that writing it copies each array
// byte once. The arrays must not change until the message is written.
type Message struct {
	buf   []byte
	parts []part
	size  int
	batch *Batch
}

// Batch returns the arrays this encode sent by reference, or nil when it
// referenced none (so there is no transaction to open). Publish it on the
// host's Table before the message reaches a receiver.
func (m *Message) Batch() *Batch { return m.batch }

// part is buf[from:to] followed by ext.
type part struct {
	to  int
	ext []byte
}

// Len returns the encoded size in bytes.
func (m *Message) Len() int { return m.size }

// AppendTo appends the message to dst.
func (m *Message) AppendTo(dst []byte) []byte {
	if cap(dst)-len(dst) < m.size {
		// bytes.Join allocates without clearing memory that the copy is
		// about to overwrite anyway (slices.Grow would clear it first).
		return bytes.Join(m.pieces(dst), nil)
	}
	for _, p := range m.pieces(nil) {
		dst = append(dst, p...)
	}
	return dst
}

// pieces returns first and the message's byte ranges, in order.
func (m *Message) pieces(first []byte) [][]byte {
	out := make([][]byte, 0, 2*len(m.parts)+2)
	out = append(out, first)
	from := 0
	for _, p := range m.parts {
		out = append(out, m.buf[from:p.to], p.ext)
		from = p.to
	}
	return append(out, m.buf[from:])
}

// Bytes returns the message in one new slice.
func (m *Message) Bytes() []byte { return m.AppendTo(nil) }

// WriteTo writes the message to w without assembling it in memory.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, b := range m.pieces(nil) {
		if len(b) == 0 {
			continue
		}
		k, err := w.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Marshal encodes v and returns the message bytes.
func (m *EncMode) Marshal(v any) ([]byte, error) {
	msg, err := m.Encode(v)
	if err != nil {
		return nil, err
	}
	return msg.Bytes(), nil
}

// Encode encodes v into a Message.
func (m *EncMode) Encode(v any) (*Message, error) {
	e := &encoder{mode: m}
	if m.opts.Slots { // a skeleton: the value alone
		if err := e.encode(v, 0); err != nil {
			return nil, err
		}
		return e.message(), nil
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, TagEnvelope)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 3)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, FormatVersion)
	if err := e.encode(v, 0); err != nil {
		return nil, err
	}
	if e.fresh != nil {
		var total int64
		for i := range e.fresh.Items {
			total += e.fresh.Items[i].Size()
		}
		e.fresh.Ref.Items, e.fresh.Ref.Bytes = len(e.fresh.Items), total
		e.batches[e.freshIndex] = e.fresh.Ref
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, uint64(len(e.batches)))
	for _, b := range e.batches {
		e.buf = appendBatchRef(e.buf, b)
	}
	return e.message(), nil
}

// message returns what e wrote as a Message.
func (e *encoder) message() *Message {
	msg := &Message{buf: e.buf, parts: e.parts, size: len(e.buf), batch: e.fresh}
	for _, p := range e.parts {
		msg.size += len(p.ext)
	}
	return msg
}

type encoder struct {
	mode  *EncMode
	buf   []byte
	parts []part

	// The side table of batch descriptors, in order of first use.
	batches    []BatchRef
	batchIndex map[uuid.UUID]int
	// This hop's own batch, once an array went by reference.
	fresh        *Batch
	freshIndex   int
	views        Views           // one item per view of memory
	viewItems    []int           // per view: its item id
	freshExterns map[*Extern]int // an extern array → its item id

	// In a skeleton, the batches its lazy refs carried in full.
	skel skelBatches
}

func (e *encoder) appendPayload(b []byte) {
	if len(b) <= inlineCopyMax {
		e.buf = append(e.buf, b...)
		return
	}
	e.parts = append(e.parts, part{to: len(e.buf), ext: b})
}

// sortedKeys returns m's keys in the order Encode writes them: the order of
// their encoded bytes, which for text keys is shorter first, then bytewise.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	cmp := func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	}
	if !slices.IsSortedFunc(keys, cmp) { // a map built in order often iterates so
		slices.SortFunc(keys, cmp)
	}
	return keys
}

// nest checks that an item at depth that opens levels nested CBOR levels
// (lists, maps, tags) stays within MaxDepth, counted as the decoder counts.
func (e *encoder) nest(depth, levels int) error {
	if depth+levels > e.mode.opts.MaxDepth {
		return errorf(KindLimit, "value nests deeper than MaxDepth %d (a cycle?)", e.mode.opts.MaxDepth)
	}
	return nil
}

// encode writes v, an item at nesting depth (the body is at 0).
func (e *encoder) encode(v any, depth int) error {
	switch v := v.(type) {
	case nil:
		e.buf = append(e.buf, cbor.MajorSimple<<5|cbor.SimpleNull)
	case bool:
		if v {
			e.buf = append(e.buf, cbor.MajorSimple<<5|cbor.SimpleTrue)
		} else {
			e.buf = append(e.buf, cbor.MajorSimple<<5|cbor.SimpleFalse)
		}
	case int:
		e.buf = appendInt(e.buf, int64(v))
	case int8:
		e.buf = appendInt(e.buf, int64(v))
	case int16:
		e.buf = appendInt(e.buf, int64(v))
	case int32:
		e.buf = appendInt(e.buf, int64(v))
	case int64:
		e.buf = appendInt(e.buf, v)
	case uint:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(v))
	case uint8:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(v))
	case uint16:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(v))
	case uint32:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(v))
	case uint64:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, v)
	case *big.Int:
		if v == nil {
			return errorf(KindInvalid, "nil *big.Int")
		}
		if err := e.nest(depth, 1); err != nil {
			return err
		}
		if e.mode.opts.Slots { // a skeleton keeps it a *big.Int (docs/wire-format.md §4.1)
			e.buf = appendBignum(e.buf, v)
		} else {
			e.buf = appendBigInt(e.buf, v)
		}
	case Float16:
		if e.mode.opts.Slots {
			e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelFloat16)
			e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(v))
		} else {
			e.buf = cbor.AppendFloat16(e.buf, uint16(v))
		}
	case float32:
		if e.mode.opts.Slots {
			e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tagSkelFloat32)
			e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(math.Float32bits(v)))
		} else {
			e.buf = cbor.AppendFloat32(e.buf, v)
		}
	case float64:
		e.buf = cbor.AppendFloat64(e.buf, v)
	case string:
		if !utf8.ValidString(v) {
			return errorf(KindInvalid, "string %q is not valid UTF-8", v)
		}
		e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(v)))
		e.buf = append(e.buf, v...)
	case []byte:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, uint64(len(v)))
		e.appendPayload(v)
	case *Array:
		// tag, [shape, typed-array tag]: three levels, as for a ref node.
		if err := e.nest(depth, 3); err != nil {
			return err
		}
		if e.mode.opts.Slots {
			return e.encodeSkelArray(v)
		}
		if e.mode.opts.ByRef && v != nil && int64(len(v.Data)) >= e.mode.opts.RefThreshold {
			return e.encodeRef(v)
		}
		return e.encodeArray(v)
	case *LazyRef:
		if err := e.nest(depth, 3); err != nil {
			return err
		}
		if e.mode.opts.Slots {
			return e.encodeSkelLazyRef(v)
		}
		return e.encodeLazyRef(v)
	case *Extern:
		if err := e.nest(depth, 3); err != nil {
			return err
		}
		return e.encodeExtern(v)
	case SlotIndex:
		if !e.mode.opts.Slots || v < 0 {
			return errorf(KindInvalid, "slot %d outside a skeleton: place the plan's arrays first", int(v))
		}
		if err := e.nest(depth, 1); err != nil {
			return err
		}
		e.appendSlot(v)
	default:
		return e.encodeContainer(v, depth)
	}
	return nil
}

func (e *encoder) encodeContainer(v any, depth int) error {
	switch v.(type) {
	case []any, map[string]any, Map, map[any]any:
		if err := e.nest(depth, 1); err != nil {
			return err
		}
		depth++
	}
	switch v := v.(type) {
	case []any:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, uint64(len(v)))
		for _, x := range v {
			if err := e.encode(x, depth); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		e.buf = cbor.AppendHead(e.buf, cbor.MajorMap, uint64(len(v)))
		for _, k := range sortedKeys(v) {
			if !utf8.ValidString(k) {
				return errorf(KindInvalid, "map key %q is not valid UTF-8", k)
			}
			e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(k)))
			e.buf = append(e.buf, k...)
			if err := e.encode(v[k], depth); err != nil {
				return err
			}
		}
		return nil
	case Map:
		return e.encodePairs(v, depth)
	case map[any]any:
		pairs := make(Map, 0, len(v))
		for k, x := range v {
			pairs = append(pairs, Pair{k, x})
		}
		return e.encodePairs(pairs, depth)
	case Object:
		return e.encodeObject(v.Name, v.Data, depth)
	}
	if t := e.mode.opts.Registry.lookupType(reflect.TypeOf(v)); t != nil {
		data, err := t.decompose(v)
		if err != nil {
			return &Error{Kind: KindInvalid, Offset: -1, Msg: "decompose " + t.name, Err: err}
		}
		return e.encodeObject(t.name, data, depth)
	}
	w, err := Normalize(v)
	if err != nil {
		return err
	}
	return e.encode(w, depth)
}

func (e *encoder) encodeObject(name string, data any, depth int) error {
	if err := e.nest(depth, 2); err != nil {
		return err
	}
	if !utf8.ValidString(name) || name == "" {
		return errorf(KindInvalid, "type name %q is empty or not valid UTF-8", name)
	}
	depth += 2
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, TagObject)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 2)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(name)))
	e.buf = append(e.buf, name...)
	return e.encode(data, depth)
}

// encodePairs writes a map with keys of any scalar kind, sorted by their
// encoded bytes (RFC 8949 §4.2.1).
func (e *encoder) encodePairs(pairs Map, depth int) error {
	if e.mode.opts.Slots {
		return e.encodeSkelPairs(pairs, depth)
	}
	sorted, err := sortPairs(pairs)
	if err != nil {
		return err
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorMap, uint64(len(sorted)))
	for _, p := range sorted {
		e.buf = append(e.buf, p.key...)
		if err := e.encode(p.val, depth); err != nil {
			return err
		}
	}
	return nil
}

// encPair is a pair of a Map with its key encoded.
type encPair struct {
	key []byte
	val any
}

// sortPairs encodes the keys of pairs and sorts the pairs by them,
// refusing two equal keys.
func sortPairs(pairs Map) ([]encPair, error) {
	sorted := make([]encPair, len(pairs))
	for i, p := range pairs {
		k, err := appendKey(nil, p.Key)
		if err != nil {
			return nil, err
		}
		sorted[i] = encPair{k, p.Value}
	}
	slices.SortFunc(sorted, func(a, b encPair) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(sorted); i++ {
		if bytes.Equal(sorted[i-1].key, sorted[i].key) {
			return nil, errorf(KindInvalid, "duplicate map key %x", sorted[i].key)
		}
	}
	return sorted, nil
}

// appendKey appends a map key: an integer, string, byte string, bool or
// nil. Floats are not keys: RFC 8949 §5.6.1 makes 1.0 in two widths, or two
// NaNs, the same key, which a comparison of encoded bytes cannot see.
func appendKey(dst []byte, k any) ([]byte, error) {
	switch k.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		*big.Int, string, []byte:
		e := encoder{mode: defaultEncMode, buf: dst}
		if err := e.encode(k, 0); err != nil {
			return nil, err
		}
		return (&Message{buf: e.buf, parts: e.parts}).AppendTo(nil), nil
	}
	return nil, errorf(KindInvalid, "map key is %s, not an integer, text, byte string, boolean or null", describe(k))
}

func (e *encoder) encodeArray(a *Array) error {
	if err := a.Validate(); err != nil {
		return err
	}
	tag := uint64(tagArrayRow)
	if wireOrder(a.Shape, a.Order) == ColumnMajor {
		tag = tagArrayColumn
	}
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, tag)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 2)
	e.appendShape(a.Shape)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, dtypes[a.DType].tag)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorBytes, uint64(len(a.Data)))
	e.appendPayload(a.Data)
	return nil
}

func (e *encoder) appendShape(shape []int) {
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, uint64(len(shape)))
	for _, d := range shape {
		e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(d))
	}
}

// encodeRef adds a to this hop's batch (once per view) and writes a ref node.
func (e *encoder) encodeRef(a *Array) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := e.ensureFresh(); err != nil {
		return err
	}
	n, added := e.views.Add(a)
	if added {
		id := len(e.fresh.Items)
		e.fresh.Items = append(e.fresh.Items, Item{ID: id, DType: a.DType, Shape: slices.Clone(a.Shape), Order: a.Order, Data: a.Data})
		e.viewItems = append(e.viewItems, id)
	}
	e.appendRefNode(e.freshIndex, e.viewItems[n], a.DType, a.Shape, a.Order)
	return nil
}

// ensureFresh starts this hop's batch, with a fresh ref id and token, if
// no array went by reference yet.
func (e *encoder) ensureFresh() error {
	if e.fresh != nil {
		return nil
	}
	b, err := newBatch(e.mode.opts.Rand, e.mode.opts.Source)
	if err != nil {
		return err
	}
	e.fresh = b
	e.freshIndex = e.addBatch(b.Ref)
	return nil
}

// wireOrder is the order written for an array: column-major only when it
// differs from row-major, that is when the array has elements and two or
// more dimensions exceed 1, so that the same memory always gives the same
// bytes (numpy, for one, cannot tell the two apart otherwise).
func wireOrder(shape []int, o Order) Order {
	if o != ColumnMajor {
		return RowMajor
	}
	big := 0
	for _, d := range shape {
		if d == 0 {
			return RowMajor // no element: both orders are the same bytes
		}
		if d > 1 {
			big++
		}
	}
	if big < 2 {
		return RowMajor
	}
	return ColumnMajor
}

// encodeLazyRef writes a pass-through reference again, pointing at its
// original batch.
func (e *encoder) encodeLazyRef(l *LazyRef) error {
	if err := checkLazyRef(l); err != nil {
		return err
	}
	idx, ok := e.batchIndex[l.Batch.RefID]
	if !ok {
		idx = e.addBatch(l.Batch)
	} else if e.batches[idx] != l.Batch && idx != e.freshIndex {
		return errorf(KindInvalid, "two different batch descriptors share ref id %s", l.Batch.RefID)
	}
	e.appendRefNode(idx, l.Item, l.DType, l.Shape, l.Order)
	return nil
}

func (e *encoder) addBatch(b BatchRef) int {
	if e.batchIndex == nil {
		e.batchIndex = map[uuid.UUID]int{}
	}
	e.batches = append(e.batches, b)
	e.batchIndex[b.RefID] = len(e.batches) - 1
	return len(e.batches) - 1
}

// appendRefNode writes tag TagRef [batch, item, dtype, shape, order].
func (e *encoder) appendRefNode(batch, item int, dt DType, shape []int, order Order) {
	e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, TagRef)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 5)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(batch))
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(item))
	name := dt.String()
	e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(name)))
	e.buf = append(e.buf, name...)
	e.appendShape(shape)
	e.buf = cbor.AppendHead(e.buf, cbor.MajorUint, uint64(wireOrder(shape, order)))
}

// appendBatchRef writes a batch descriptor [source, ref_id, token, items,
// bytes], followed by holder when the batch has one.
func appendBatchRef(dst []byte, b BatchRef) []byte {
	n := uint64(5)
	if b.Holder != "" {
		n = 6
	}
	dst = cbor.AppendHead(dst, cbor.MajorArray, n)
	dst = cbor.AppendHead(dst, cbor.MajorText, uint64(len(b.Source)))
	dst = append(dst, b.Source...)
	dst = cbor.AppendHead(dst, cbor.MajorBytes, 16)
	dst = append(dst, b.RefID[:]...)
	dst = cbor.AppendHead(dst, cbor.MajorBytes, TokenSize)
	dst = append(dst, b.Token[:]...)
	dst = cbor.AppendHead(dst, cbor.MajorUint, uint64(b.Items))
	dst = cbor.AppendHead(dst, cbor.MajorUint, uint64(b.Bytes))
	if b.Holder != "" {
		dst = cbor.AppendHead(dst, cbor.MajorText, uint64(len(b.Holder)))
		dst = append(dst, b.Holder...)
	}
	return dst
}

func appendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return cbor.AppendHead(dst, cbor.MajorUint, uint64(v))
	}
	return cbor.AppendHead(dst, cbor.MajorNeg, ^uint64(v))
}

var bigOne = big.NewInt(1)

// appendBigInt writes v as a plain integer when it fits major type 0 or 1,
// and as a bignum (tag 2 or 3, no leading zero bytes) otherwise.
func appendBigInt(dst []byte, v *big.Int) []byte {
	major, tag, n := bigIntParts(v)
	if n.IsUint64() {
		return cbor.AppendHead(dst, major, n.Uint64())
	}
	return appendBignumParts(dst, tag, n)
}

// appendBignum writes v as a bignum (tag 2 or 3) whatever its size: the
// form of a *big.Int in a skeleton.
func appendBignum(dst []byte, v *big.Int) []byte {
	_, tag, n := bigIntParts(v)
	return appendBignumParts(dst, tag, n)
}

// bigIntParts returns the major type, bignum tag and CBOR magnitude of v
// (-1 - v for a negative v).
func bigIntParts(v *big.Int) (major byte, tag uint64, n *big.Int) {
	if v.Sign() < 0 {
		n = new(big.Int).Neg(v) // CBOR stores -1 - v
		return cbor.MajorNeg, tagBignumNeg, n.Sub(n, bigOne)
	}
	return cbor.MajorUint, tagBignumPos, v
}

func appendBignumParts(dst []byte, tag uint64, n *big.Int) []byte {
	b := n.Bytes()
	dst = cbor.AppendHead(dst, cbor.MajorTag, tag)
	dst = cbor.AppendHead(dst, cbor.MajorBytes, uint64(len(b)))
	return append(dst, b...)
}
