package core

import (
	"context"
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
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
	return m.Place(ctx, p)
}

// planWith is Plan; with recompose, registered typed objects become
// deferred objects that place recomposes.
func (m *DecMode) planWith(data []byte, recompose bool) (*Plan, error) {
	return m.walk(data, &decoder{recompose: recompose})
}

// walk checks data and walks it once through d, whose output is chosen:
// Go values (Plan, Decode) or a skeleton (Skeleton).
func (m *DecMode) walk(data []byte, d *decoder) (*Plan, error) {
	if int64(len(data)) > m.opts.MaxMessageSize {
		return nil, errorf(KindLimit, "message of %d bytes exceeds MaxMessageSize %d", len(data), m.opts.MaxMessageSize)
	}
	// Check well-formedness and limits before building anything.
	s := scanner{m: m, r: cbor.Reader{Data: data}, poller: d.poller}
	if err := s.scan(); err != nil {
		return nil, err
	}
	d.mode, d.r, d.plan, d.bodyEnd = m, cbor.Reader{Data: data}, &Plan{}, s.bodyEnd
	if d.skel != nil {
		// The skeleton is about the message's size, less the arrays and
		// byte strings that become slots: start there, within reason.
		d.skel.buf = make([]byte, 0, min(len(data)+len(data)/4, 4<<20))
		if !m.opts.PassThrough { // every ref a slot (small arrays may stay in the skeleton)
			d.plan.Slots = make([]Slot, 0, s.refs)
		}
	} else {
		slots := s.arrays
		if !m.opts.PassThrough {
			slots += s.refs
		}
		d.plan.Slots = make([]Slot, 0, slots)
	}
	var body any
	var err error
	if m.opts.Slots {
		body, err = d.value() // a skeleton: the value alone
	} else {
		body, err = d.envelope()
	}
	if err != nil {
		return nil, err
	}
	d.plan.Body, d.plan.Batches = body, d.batches
	if d.skel != nil {
		d.plan.Skeleton = d.skel.message()
	}
	return d.plan, nil
}

// pollEvery is how many items a walk reads between two calls of its
// stop function (DecMode.Skeleton).
const pollEvery = 4096

// poller counts the items a walk reads and, every pollEvery of them,
// asks its stop function, if any, whether to go on: a binding that runs
// the walk where no context reaches it (a wasm guest) stops it so.
type poller struct {
	stop   func() error // nil: never stops
	budget int          // items until the next poll
}

// tick counts one item.
func (p *poller) tick() error {
	if p.budget--; p.budget < 0 {
		return p.poll()
	}
	return nil
}

// poll is tick's rare case, apart so that tick is inlined.
//
//go:noinline
func (p *poller) poll() error {
	p.budget = pollEvery
	if p.stop == nil {
		return nil
	}
	return p.stop()
}

// scanner checks that a message (or skeleton) is exactly one well-formed
// item within the limits, without allocating.
type scanner struct {
	m *DecMode
	r cbor.Reader
	poller
	arrays  int // the typed-array tags: a bound on the inline arrays
	refs    int // the ref-node tags: a bound on the references
	bodyEnd int // where a message's body ends and its side table begins
}

func (s *scanner) scan() error {
	// Depth counts from the body: the envelope's tag and array are free.
	// A skeleton has no envelope.
	depth := -2
	if s.m.opts.Slots {
		depth = 0
	}
	if err := s.item(depth); err != nil {
		return err
	}
	if s.r.Off != len(s.r.Data) {
		return errorAt(KindSyntax, s.r.Off, "%d bytes of trailing data", len(s.r.Data)-s.r.Off)
	}
	return nil
}

// intRun moves past the integers, up to most of them, that come next,
// and counts them against the poll budget: it stops where the scan is
// due to poll, for item. It returns how many.
func (s *scanner) intRun(most uint64) uint64 {
	data := s.r.Data[s.r.Off:]
	k := min(most, uint64(max(s.budget, 0)))
	var items uint64
	n := 0
	for ; items < k && n < len(data); items++ {
		size := 0
		switch b := data[n]; {
		case smallInt(b):
			size = 1
		case b < 0x40 && b&0x1f <= 27:
			size = 1<<(b&0x1f-24) + 1
		}
		if size == 0 || len(data)-n < size {
			break
		}
		n += size
	}
	s.r.Off += n
	s.budget -= int(items)
	return items
}

// textPiece is how many bytes of a text string the scan checks between
// two polls.
const textPiece = 1 << 20

// validText reports whether b is valid UTF-8, polling between pieces of
// textPiece bytes, each cut where a character starts: a piece of valid
// text is valid text, and a cut at no start (at most three bytes back)
// starts the next piece invalid.
func (s *scanner) validText(b []byte) (bool, error) {
	for len(b) > textPiece {
		cut := textPiece
		for cut > textPiece-utf8.UTFMax && !utf8.RuneStart(b[cut]) {
			cut--
		}
		if !utf8.Valid(b[:cut]) {
			return false, nil
		}
		b = b[cut:]
		if err := s.poll(); err != nil {
			return false, err
		}
	}
	return utf8.Valid(b), nil
}

// item checks one item at depth.
func (s *scanner) item(depth int) error {
	if err := s.tick(); err != nil {
		return err
	}
	m, r := s.m, &s.r
	off := r.Off
	h, ok := r.ReadSmall()
	if !ok {
		h, ok = r.ReadHead4()
	}
	if !ok {
		h, ok = r.ReadHead1()
	}
	if !ok {
		var err error
		if h, err = r.ReadHead(); err != nil {
			return errorAt(KindSyntax, off, "%v", err)
		}
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
		if h.Major == cbor.MajorText {
			if ok, err := s.validText(b); err != nil || !ok {
				if err == nil {
					err = errorAt(KindSyntax, off, "text string is not valid UTF-8")
				}
				return err
			}
		}
	case cbor.MajorArray, cbor.MajorMap:
		elems := h.Arg
		min := elems // every item takes at least one byte
		if h.Major == cbor.MajorMap {
			if elems > math.MaxUint64/2 {
				return errorAt(KindSyntax, off, "map of %d pairs but only %d bytes remain", elems, r.Remaining())
			}
			min = 2 * elems
		}
		if min > uint64(r.Remaining()) {
			return errorAt(KindSyntax, off, "%d items declared but only %d bytes remain", min, r.Remaining())
		}
		if elems > uint64(m.opts.MaxElements) && depth >= 0 { // the envelope's lists are free
			return errorAt(KindLimit, off, "%d elements exceed MaxElements %d", elems, m.opts.MaxElements)
		}
		if depth >= m.depthLimit {
			return errorAt(KindLimit, off, "nesting exceeds MaxDepth %d", m.opts.MaxDepth)
		}
		for i := uint64(0); i < min; i++ {
			if depth == -1 { // an envelope's list: its body is item 1, which its side table follows
				if err := s.item(depth + 1); err != nil {
					return err
				}
				if i == 1 {
					s.bodyEnd = r.Off
				}
			} else if r.Off < len(r.Data) && r.Data[r.Off] < 0x40 { // an integer: look for a run
				if k := s.intRun(min - i); k > 0 {
					i += k - 1 // integers: nothing to check
				} else if err := s.item(depth + 1); err != nil {
					return err
				}
			} else if s.budget > 0 && refHead(r.Data, r.Off) { // a ref node, without item's call for its tag
				at := r.Off
				if r.Off += 5; s.refNode(depth + 2) {
					s.budget-- // the tag's tick
					s.refs++
					continue
				}
				r.Off = at // any other form: item's
				if err := s.item(depth + 1); err != nil {
					return err
				}
			} else if err := s.item(depth + 1); err != nil {
				return err
			}
		}
	case cbor.MajorTag:
		if depth >= m.depthLimit {
			return errorAt(KindLimit, off, "nesting exceeds MaxDepth %d", m.opts.MaxDepth)
		}
		switch {
		case h.Arg == TagRef:
			s.refs++
			if s.refNode(depth + 1) {
				return nil
			}
		case h.Arg == tagSkelLazyRef && m.opts.Slots: // of the same form, by number
			if s.refNode(depth + 1) {
				return nil
			}
		case h.Arg == tagArrayRow || h.Arg == tagArrayColumn:
			if s.ndarray(depth + 1) {
				return nil
			}
		case isArrayTag(h.Arg):
			s.arrays++
		}
		return s.item(depth + 1)
	case cbor.MajorSimple:
		if h.AI == 24 && h.Arg < 32 {
			return errorAt(KindSyntax, off, "simple value %d in two-byte form", h.Arg)
		}
	}
	return nil
}

// refNode moves past the content of a ref node, at depth, of the form
// almost every one has, and reports whether it did: a list of 5 of one
// small unsigned integer, an unsigned integer, a short ASCII text, a
// short list of unsigned integers and one more, as item would check them.
// Any other content is item's to check: a message of many references
// costs a wasm guest a call per item otherwise.
func (s *scanner) refNode(depth int) bool {
	m, b, i := s.m, s.r.Data, s.r.Off
	if generalOnly || depth+1 >= m.depthLimit || m.opts.MaxElements < 5 || len(b)-i < 7 || b[i] != 0x85 {
		return false
	}
	if i = skipUint(b, i+1); i < 0 {
		return false
	}
	if i = skipUint(b, i); i < 0 {
		return false
	}
	if i >= len(b) || b[i]>>5 != cbor.MajorText || b[i]&0x1f >= 24 { // the dtype: a text of fewer than 24 bytes
		return false
	}
	n := int(b[i] & 0x1f)
	if i++; n > len(b)-i || int64(n) > m.opts.MaxByteLen {
		return false
	}
	for _, c := range b[i : i+n] {
		if c >= utf8.RuneSelf { // ASCII: valid UTF-8
			return false
		}
	}
	if i += n; i >= len(b) || b[i]>>5 != cbor.MajorArray || b[i]&0x1f >= 24 { // the shape
		return false
	}
	dims := int(b[i] & 0x1f)
	if i++; dims > m.opts.MaxElements {
		return false
	}
	for range dims + 1 { // and the order
		if i = skipUint(b, i); i < 0 {
			return false
		}
	}
	s.r.Off = i
	s.budget -= 6 + dims // the items it moved past, for the poller
	return true
}

// ndarray moves past the content of an RFC 8746 array (tag 40 or 1040),
// at depth, of the form small arrays have, and reports whether it did:
// a list of 2 of a short list of unsigned integers and a tag of a
// one-byte argument around a byte string, as item would check them. Any
// other content is item's to check.
func (s *scanner) ndarray(depth int) bool {
	m, b, i := s.m, s.r.Data, s.r.Off
	if generalOnly || depth+1 >= m.depthLimit || m.opts.MaxElements < 2 || len(b)-i < 4 || b[i] != 0x82 ||
		b[i+1]>>5 != cbor.MajorArray || b[i+1]&0x1f >= 24 || int(b[i+1]&0x1f) > m.opts.MaxElements {
		return false
	}
	dims := int(b[i+1] & 0x1f)
	i += 2
	for range dims {
		if i = skipUint(b, i); i < 0 {
			return false
		}
	}
	if len(b)-i < 3 || b[i] != 0xd8 { // a tag of a one-byte argument
		return false
	}
	tag := uint64(b[i+1])
	n, at := bytesHead(b, i+2)
	if at < 0 || n > len(b)-at || int64(n) > m.opts.MaxByteLen {
		return false
	}
	if isTypedArrayTag(tag) { // isArrayTag, for a tag under 256
		s.arrays++
	}
	s.r.Off = at + n
	s.budget -= 4 + dims // the items it moved past, for the poller
	return true
}

// bytesHead reads the head of a byte string of fewer than 2^16 bytes at
// b[i]: its length and where its bytes start; at is -1 for any other.
func bytesHead(b []byte, i int) (n, at int) {
	if i < len(b) && b[i]-0x40 < 24 { // inline: fewer than 24 bytes
		return int(b[i] - 0x40), i + 1
	}
	return bytesHeadLong(b, i)
}

func bytesHeadLong(b []byte, i int) (n, at int) {
	switch {
	case i >= len(b):
	case b[i] == 0x58 && len(b)-i >= 2 && b[i+1] >= 24:
		return int(b[i+1]), i + 2
	case b[i] == 0x59 && len(b)-i >= 3 && b[i+1] != 0:
		return int(b[i+1])<<8 | int(b[i+2]), i + 3
	}
	return 0, -1
}

// skipUint returns where the unsigned integer whose head is at b[i]
// ends, or -1 when none starts there or it overruns b.
func skipUint(b []byte, i int) int {
	if i < 0 || i >= len(b) || b[i] > 27 {
		return -1
	}
	n := 1
	if c := b[i]; c >= 24 {
		n += 1 << (c - 24)
	}
	if n > len(b)-i {
		return -1
	}
	return i + n
}

// skip moves r past one item that scan has accepted, without checking
// it again.
func skip(r *cbor.Reader) error {
	for n := uint64(1); n > 0; n-- {
		off := r.Off
		h, err := r.ReadHead()
		if err != nil {
			return errorAt(KindSyntax, off, "%v", err)
		}
		switch h.Major {
		case cbor.MajorBytes, cbor.MajorText:
			if _, err := r.ReadN(h.Arg); err != nil {
				return errorAt(KindSyntax, off, "%v", err)
			}
		case cbor.MajorArray:
			n += h.Arg
		case cbor.MajorMap:
			n += 2 * h.Arg
		case cbor.MajorTag:
			n++
		}
	}
	return nil
}

// decoder walks a message that scan has accepted, once, with one of two
// outputs: Go values, or, with skel set, the body written as a binding's
// skeleton (DecMode.Skeleton). Every rule of a body (tags, map keys,
// arrays, ref nodes, typed objects, limits) is read and checked in one
// place whichever the output; the outputs differ only in what they make
// of an item once it is checked. It still checks every read, so that a
// scan bug cannot turn into a panic.
type decoder struct {
	mode       *DecMode
	r          cbor.Reader
	bodyEnd    int // where the body ends (scanner.bodyEnd)
	arrayBytes int64
	poller
	plan      *Plan
	recompose bool // registered typed objects become deferred objects

	batches []BatchRef
	refs    refSet     // (batch, item) → its ref's number: a SlotIndex, or in lazies
	lazies  []*LazyRef // with PassThrough, the refs read so far

	// Memory handed out in small pieces: lazy refs, shapes.
	lazySlab []LazyRef
	intSlab  []int
	intsUsed int // of intSlab

	lastDType struct { // the dtype name refFieldsFast read last
		key   dtypeKey
		dtype DType
	}

	// With DecMode.Skeleton: the skeleton the body is written into, and
	// what crosses inside it rather than as a slot. skel is nil while a
	// map key is read as a Go value (pair); skelWalk stays set.
	skel         *encoder
	skelWalk     bool
	arraySlotMin int64
	bytesSlotMin int64

	// Reading a skeleton: the batches its lazy refs carried in full.
	skelBatches skelBatches
	// Writing one in pass-through: per batch, its number in the skeleton
	// +1 (0: none yet), and how many are numbered.
	skelNumbers  []int
	skelNumbered int
}

// addBytes counts n more array bytes against MaxArrayBytes.
func (d *decoder) addBytes(n uint64, off int) error {
	if n <= uint64(d.mode.opts.MaxArrayBytes-d.arrayBytes) { // never negative
		d.arrayBytes += int64(n)
		return nil
	}
	return d.overBytes(off)
}

func (d *decoder) overBytes(off int) error {
	return errorAt(KindLimit, off, "array bytes exceed MaxArrayBytes %d", d.mode.opts.MaxArrayBytes)
}

func (d *decoder) syntax(off int, err error) error {
	return errorAt(KindSyntax, off, "%v", err)
}

func (d *decoder) head() (cbor.Head, int, error) {
	off := d.r.Off
	if h, ok := d.r.ReadSmall(); ok { // inline: a wasm guest's calls are dear
		return h, off, nil
	}
	if h, ok := d.r.ReadHead4(); ok {
		return h, off, nil
	}
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
	d.r.Off = d.bodyEnd
	if err := d.batchTable(); err != nil {
		return nil, err
	}
	end := d.r.Off
	d.r.Off = bodyOff
	body, err := d.value()
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
	f, ok := d.refFieldsFast()
	if !ok {
		var err error
		if f, err = d.refFields(); err != nil {
			return nil, err
		}
	}
	bi, item, dt, shape, order, fields := f.batch, f.item, f.dtype, f.shape, f.order, f.fields
	if bi >= uint64(len(d.batches)) {
		return nil, errorAt(KindProtocol, off, "ref node names batch %d of %d", bi, len(d.batches))
	}
	batch := &d.batches[bi]
	if item >= uint64(batch.Items) {
		return nil, errorAt(KindProtocol, off, "ref node names item %d of a batch of %d", item, batch.Items)
	}
	n, ok := byteLen(dt, shape)
	if !ok {
		return nil, errorAt(KindMismatch, off, "shape %v of %s overflows", shape, dt)
	}
	passThrough := d.mode.opts.PassThrough
	// In a skeleton walk in pass-through, the refs' record holds node
	// offsets (no lazy refs are kept), inside a map key too, whose Go
	// value (never a valid key: pair refuses it) is a lazy ref of its own.
	byOffset := passThrough && d.skelWalk
	if r, ok := d.refs.get(int(bi), int(item)); ok { // the same item again: one value, one download
		if !d.sameRef(r, dt, shape, order) {
			return nil, errorAt(KindMismatch, off, "two ref nodes describe item %d of batch %d differently", item, bi)
		}
		if byOffset && d.skel == nil {
			return d.lazyRef(batch, item, dt, shape, order), nil
		}
		if byOffset {
			d.releaseInts(shape)
		}
		return d.refOut(r, int(bi), d.r.Data[fields:d.r.Off])
	}
	// Declared bytes count against the limit on every path, pass-through
	// included, so that resolving a lazy ref later cannot allocate more.
	if err := d.addBytes(n, off); err != nil {
		return nil, err
	}
	var r int
	switch {
	case byOffset:
		r = off // no lazy ref for a skeleton: sameRef reads its node again
	case passThrough:
		d.lazies = append(d.lazies, d.lazyRef(batch, item, dt, shape, order))
		r = len(d.lazies) - 1
	default:
		r = int(d.plan.add(Slot{DType: dt, Shape: shape, Order: order, Bytes: int64(n), Offset: -1, Batch: int(bi), Item: int(item), Node: int64(off)}))
	}
	if !d.refs.putNext(int(bi), int(item), r) {
		d.refs.put(len(d.batches), int(bi), int(item), r)
	}
	if byOffset && d.skel == nil {
		return d.lazyRef(batch, item, dt, shape, order), nil
	}
	if byOffset {
		d.releaseInts(shape)
	}
	if passThrough && d.skel != nil && bi < uint64(len(d.skelNumbers)) &&
		d.skel.shortLazy(d.skelNumbers[bi]-1, d.r.Data[fields:d.r.Off]) { // refOut's commonest case, without its call
		return nil, nil
	}
	return d.refOut(r, int(bi), d.r.Data[fields:d.r.Off])
}

// lazyRef returns a new lazy ref to item of batch.
func (d *decoder) lazyRef(batch *BatchRef, item uint64, dt DType, shape []int, order Order) *LazyRef {
	l := d.newLazyRef()
	*l = LazyRef{Batch: *batch, Item: int(item), DType: dt, Shape: shape, Order: order}
	return l
}

// skelRef is refNode for a skeleton in pass-through, for the ref node
// almost every one is, whose content starts at d.r.Off (its tag, at off,
// read): of the form refFieldsFast takes, of the dtype the ref before had,
// whose item is the next of a batch the skeleton has numbered already. It
// writes the node's lazy ref and reports whether it did; if not, it has
// changed nothing and refNode takes the node. It calls nothing: in a wasm
// guest, Go's code for a function of many calls (refNode's error paths)
// costs most of a reference's time. (Hence the integers read inline, as
// refFieldsFast reads them: a function that reads one is not inlined.)
func (d *decoder) skelRef(off int) bool {
	b, i := d.r.Data, d.r.Off
	if generalOnly || !d.mode.opts.PassThrough || len(b)-i < 7 || b[i] != 0x85 || b[i+1] >= 24 {
		return false
	}
	bi, fields := int(b[i+1]), i+2
	i += 2
	var item uint64
	switch c := b[i]; { // an unsigned integer of up to 5 bytes
	case c < 24:
		item, i = uint64(c), i+1
	case c == 24 && len(b)-i >= 2:
		item, i = uint64(b[i+1]), i+2
	case c == 25 && len(b)-i >= 3:
		item, i = uint64(b[i+1])<<8|uint64(b[i+2]), i+3
	case c == 26 && len(b)-i >= 5:
		item, i = uint64(binary.BigEndian.Uint32(b[i+1:])), i+5
	default:
		return false
	}
	if i >= len(b) || b[i]>>5 != cbor.MajorText || b[i]&0x1f >= 24 {
		return false
	}
	n := int(b[i] & 0x1f)
	if i++; n > len(b)-i {
		return false
	}
	if k, _ := dtypeKeyOf(b[i : i+n]); k != d.lastDType.key || k.n == 0 {
		return false
	}
	if i += n; i >= len(b) || b[i]>>5 != cbor.MajorArray || b[i]&0x1f >= 24 {
		return false
	}
	dims := int(b[i] & 0x1f)
	size, nonEmpty := uint64(d.lastDType.dtype.Size()), uint64(1) // byteLen's product
	for i++; dims > 0; dims-- {
		if i >= len(b) {
			return false
		}
		var v uint64
		switch c := b[i]; { // dimensions of up to 3 bytes
		case c < 24:
			v, i = uint64(c), i+1
		case c == 24 && len(b)-i >= 2:
			v, i = uint64(b[i+1]), i+2
		case c == 25 && len(b)-i >= 3:
			v, i = uint64(b[i+1])<<8|uint64(b[i+2]), i+3
		default:
			return false
		}
		if v == 0 {
			nonEmpty = 0
		} else if hi, lo := bits.Mul64(size, v); hi != 0 || lo > 1<<62 {
			return false
		} else {
			size = lo
		}
	}
	if i >= len(b) || b[i] > 1 { // the order
		return false
	}
	i++
	size *= nonEmpty
	s := &d.refs
	if bi >= len(d.batches) || item >= uint64(d.batches[bi].Items) ||
		size > uint64(d.mode.opts.MaxArrayBytes-d.arrayBytes) || // addBytes
		s.other != nil || bi >= len(s.count) || int(item) != s.count[bi] || int(item) >= len(s.inOrder[bi]) || // not numbered; putNext
		bi >= len(d.skelNumbers) || uint(d.skelNumbers[bi]-1) >= 24 || cap(d.skel.buf)-len(d.skel.buf) < 7+i-fields { // shortLazy
		return false
	}
	d.arrayBytes += int64(size)
	s.inOrder[bi][item] = off
	s.count[bi]++
	d.skel.shortLazy(d.skelNumbers[bi]-1, b[fields:i])
	d.r.Off = i
	return true
}

// generalOnly turns the fast paths of ref nodes off, for the test that
// they give the general path's answers.
var generalOnly = false

// refFields are the fields of a ref node: [batch, item, dtype, shape,
// order]. Item, dtype, shape and order start at fields in the message:
// a lazy ref has them too.
type refFields struct {
	batch, item uint64
	dtype       DType
	shape       []int
	order       Order
	fields      int
}

// refFields reads the content of a ref node. (Its fields are returned,
// not written through a pointer: a store of a pointer through a pointer
// costs a write barrier while the collector marks.)
func (d *decoder) refFields() (f refFields, err error) {
	if err = d.expectArray(5); err != nil {
		return f, err
	}
	if f.batch, err = d.uint(); err != nil {
		return f, err
	}
	f.fields = d.r.Off
	if f.item, err = d.uint(); err != nil {
		return f, err
	}
	if f.dtype, err = d.dtypeName(); err != nil {
		return f, err
	}
	if f.shape, err = d.dims(); err != nil {
		return f, err
	}
	f.order, err = d.order()
	return f, err
}

// refFieldsFast is refFields for the form almost every ref node has (the
// one scanner.refNode takes), read at once, and reports whether it was
// of that form; if not, it has read nothing. The values are those
// refFields reads: a message of many references costs a wasm guest a
// call per item otherwise.
func (d *decoder) refFieldsFast() (f refFields, ok bool) {
	b, i := d.r.Data, d.r.Off
	if generalOnly || len(b)-i < 7 || b[i] != 0x85 || b[i+1] >= 24 {
		return f, false
	}
	f.batch, f.fields = uint64(b[i+1]), i+2
	i += 2
	switch c := b[i]; { // unsigned integers of up to 5 bytes inline, here and below
	case c < 24:
		f.item, i = uint64(c), i+1
	case c == 24 && len(b)-i >= 2:
		f.item, i = uint64(b[i+1]), i+2
	case c == 25 && len(b)-i >= 3:
		f.item, i = uint64(b[i+1])<<8|uint64(b[i+2]), i+3
	case c == 26 && len(b)-i >= 5:
		f.item, i = uint64(binary.BigEndian.Uint32(b[i+1:])), i+5
	default:
		if f.item, i, ok = uintLong(b, i); !ok {
			return f, false
		}
	}
	if i >= len(b) || b[i]>>5 != cbor.MajorText || b[i]&0x1f >= 24 {
		return f, false
	}
	n := int(b[i] & 0x1f)
	if i++; n > len(b)-i {
		return f, false
	}
	if k, _ := dtypeKeyOf(b[i : i+n]); k == d.lastDType.key && k.n > 0 { // the dtype of the ref before, inline
		f.dtype = d.lastDType.dtype
	} else if f.dtype = dtypeNamed(b[i : i+n]); f.dtype == DTypeInvalid {
		return f, false
	} else {
		d.lastDType.key, d.lastDType.dtype = k, f.dtype
	}
	if i += n; i >= len(b) || b[i]>>5 != cbor.MajorArray || b[i]&0x1f >= 24 { // fewer than MaxDims
		return f, false
	}
	f.shape = d.newInts(int(b[i] & 0x1f))
	i++
	for j := range f.shape {
		var v uint64
		if i < len(b) && b[i] < 24 {
			v, i = uint64(b[i]), i+1
		} else if v, i, ok = uintLong(b, i); !ok || v > math.MaxInt64 {
			return f, false
		}
		f.shape[j] = int(v)
	}
	if i >= len(b) || b[i] > 1 {
		return f, false
	}
	f.order = Order(b[i])
	d.r.Off = i + 1
	return f, true
}

// uintLong reads the unsigned integer whose head is at b[i]: its value
// and where it ends; ok is false when none starts there. Its callers read
// those of one byte themselves.
func uintLong(b []byte, i int) (v uint64, next int, ok bool) {
	next = skipUint(b, i)
	if next < 0 {
		return 0, i, false
	}
	for _, c := range b[i+1 : next] {
		v = v<<8 | uint64(c)
	}
	return v, next, true
}

// refOut is the output of ref r (refNode) of batch bi: its *LazyRef or
// SlotIndex, or nil once it is written into the skeleton, as a lazy ref
// with fields, its node's item, dtype, shape and order, as they are.
func (d *decoder) refOut(r, bi int, fields []byte) (any, error) {
	switch {
	case d.skel != nil && d.mode.opts.PassThrough:
		if d.skelNumbers == nil {
			d.skelNumbers = make([]int, len(d.batches))
		}
		n := d.skelNumbers[bi] - 1
		if n < 0 { // its first lazy ref: in full
			d.skelNumbered++
			d.skelNumbers[bi] = d.skelNumbered
		}
		e := d.skel
		if e.shortLazy(n, fields) {
			return nil, nil
		}
		e.startSkelLazy(n, &d.batches[bi])
		e.buf = append(e.buf, fields...)
		e.endSkelLazy(n, &d.batches[bi])
		return nil, nil
	case d.skel != nil:
		d.skel.appendSlot(SlotIndex(r))
		return nil, nil
	case d.mode.opts.PassThrough:
		return d.lazies[r], nil
	}
	return SlotIndex(r), nil
}

// shortLazy writes the commonest lazy ref of a skeleton, [n, fields...]
// of a batch numbered n < 24 (fields: its node's bytes from the item on,
// a dozen or so), and reports whether it did: only when the buffer has
// room. Resliced within its capacity, e.buf keeps its pointer: no write
// barrier, which a wasm guest would call while the collector marks. It is
// small enough to be inlined (on wasm too), and copies fields without
// memmove's call: a wasm guest pays a call per reference otherwise.
func (e *encoder) shortLazy(n int, fields []byte) bool {
	at := len(e.buf)
	if uint(n) >= 24 || cap(e.buf)-at < 7+len(fields) {
		return false
	}
	e.buf = e.buf[:at+7+len(fields)]
	b := e.buf[at:]
	*(*[7]byte)(b) = [7]byte{0xda, 0x56, 0x43, 0x01, 0x04, 0x85, byte(n)} // tagSkelLazyRef [n, ...]
	for i, c := range fields {
		b[7+i] = c
	}
	return true
}

// refSet numbers the items of batches that a message's ref nodes name,
// to find those it names again. An encoder numbers a batch's items in the
// order it first writes them (0, 1, 2, …): those are kept in a slice per
// batch, in that order, any other in a map. Once an item is in the map,
// its batch's slice never reaches it (it grows only by an item that
// neither holds), so each item is in one place.
type refSet struct {
	inOrder [][]int // per batch: inOrder[b][item] is the item's number, for item < count[b]
	count   []int   // an int per batch: no write barrier per item, as a slice header would be
	other   map[[2]int]int
}

// get returns the number of item of batch b, if it has one.
func (s *refSet) get(b, item int) (int, bool) {
	if b < len(s.count) && item < s.count[b] {
		return s.inOrder[b][item], true
	}
	if s.other == nil {
		return 0, false
	}
	r, ok := s.other[[2]int{b, item}]
	return r, ok
}

// putNext numbers item of batch b r and reports whether it did: when it
// is the next item of its batch and the batch's slice has room, the
// common case, in a function small enough to be inlined (a wasm guest
// pays a call per reference otherwise).
func (s *refSet) putNext(b, item, r int) bool {
	if b >= len(s.count) || item != s.count[b] || item >= len(s.inOrder[b]) {
		return false
	}
	s.inOrder[b][item] = r
	s.count[b]++
	return true
}

// put numbers item of batch b (one of batches) r: an item get did not find.
func (s *refSet) put(batches, b, item, r int) {
	if s.count == nil {
		s.inOrder, s.count = make([][]int, batches), make([]int, batches)
	}
	if item == s.count[b] {
		if item == len(s.inOrder[b]) {
			grown := make([]int, max(2*item, 16))
			copy(grown, s.inOrder[b])
			s.inOrder[b] = grown
		}
		s.inOrder[b][item] = r
		s.count[b]++
		return
	}
	if s.other == nil {
		s.other = map[[2]int]int{}
	}
	s.other[[2]int{b, item}] = r
}

// newLazyRef returns a new zero LazyRef, many of which share an
// allocation: a message may hold hundreds of thousands.
func (d *decoder) newLazyRef() *LazyRef {
	if len(d.lazySlab) == cap(d.lazySlab) {
		d.lazySlab = make([]LazyRef, 0, min(max(2*cap(d.lazySlab), 8), 512))
	}
	d.lazySlab = d.lazySlab[:len(d.lazySlab)+1]
	return &d.lazySlab[len(d.lazySlab)-1]
}

// noInts is a shape of no dimensions, which need no memory.
var noInts = []int{}

// releaseInts gives back the ints of newInts' last run, a, when no one
// keeps them (a skeleton's shapes, written out at once).
func (d *decoder) releaseInts(a []int) {
	if i := d.intsUsed - len(a); len(a) > 0 && i >= 0 && &d.intSlab[i] == &a[0] {
		d.intsUsed = i
	}
}

// newInts returns n ints, short runs of which share an allocation: not
// zero (releaseInts gives runs back), for the caller to set each. The
// slice's capacity is n: appending to it copies.
func (d *decoder) newInts(n int) []int {
	if n == 0 {
		return noInts
	}
	if n > 64 {
		return make([]int, n)
	}
	i := d.intsUsed
	if n > len(d.intSlab)-i {
		d.intSlab, i = make([]int, max(n, min(2*len(d.intSlab), 1024), 16)), 0
	}
	d.intsUsed = i + n // an int: no write barrier, as a slice header would be
	return d.intSlab[i : i+n : i+n]
}

// sameRef reports whether ref r is of dt, shape and order.
func (d *decoder) sameRef(r int, dt DType, shape []int, order Order) bool {
	switch {
	case d.mode.opts.PassThrough && d.skelWalk: // r is the offset of its first node
		saved := d.r
		d.r.Off = r
		d.head() // read before: no error
		d.expectArray(5)
		d.uint()
		d.uint()
		dt0, _ := d.dtypeName()
		shape0, _ := d.dims()
		order0, _ := d.order()
		d.r = saved
		same := dt0 == dt && order0 == order && slices.Equal(shape0, shape)
		d.releaseInts(shape0)
		return same
	case d.mode.opts.PassThrough:
		l := d.lazies[r]
		return l.DType == dt && l.Order == order && slices.Equal(l.Shape, shape)
	}
	s := &d.plan.Slots[r]
	return s.DType == dt && s.Order == order && slices.Equal(s.Shape, shape)
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
	if h, ok := d.r.ReadSmall(); ok && h.Major == cbor.MajorUint {
		return h.Arg, nil
	} else if ok {
		d.r.Off-- // not a uint: read it again for the error
	}
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

// value reads one item of the body: its Go value, or nil once it is
// written into the skeleton.
func (d *decoder) value() (any, error) {
	if err := d.tick(); err != nil {
		return nil, err
	}
	off := d.r.Off
	h, ok := d.r.ReadSmall()
	if !ok {
		h, ok = d.r.ReadHead4() // our own tags' heads, inline too
	}
	if !ok {
		h, ok = d.r.ReadHead1() // RFC 8746's tags' heads
	}
	if !ok {
		var err error
		if h, off, err = d.head(); err != nil {
			return nil, err
		}
	}
	switch h.Major {
	case cbor.MajorUint, cbor.MajorNeg:
		if d.skel != nil {
			d.skel.buf = cbor.AppendHead(d.skel.buf, h.Major, h.Arg)
			return nil, nil
		}
		return intValue(h), nil
	case cbor.MajorBytes, cbor.MajorText:
		b, err := d.r.ReadN(h.Arg)
		if err != nil {
			return nil, d.syntax(off, err)
		}
		switch {
		case d.skel != nil:
			d.emitString(h.Major, b, off)
			return nil, nil
		case h.Major == cbor.MajorText:
			return string(b), nil
		case d.mode.opts.ZeroCopy:
			return b, nil
		}
		return append([]byte{}, b...), nil
	case cbor.MajorArray:
		if h.Arg > uint64(d.r.Remaining()) {
			return nil, d.syntax(off, cbor.ErrTruncated)
		}
		if d.skel != nil {
			d.skel.buf = cbor.AppendHead(d.skel.buf, cbor.MajorArray, h.Arg)
			for left := h.Arg; left > 0; left-- {
				if d.r.Off < len(d.r.Data) && !plainStart(d.r.Data[d.r.Off]) {
					if !generalOnly && d.budget > 0 && !d.mode.opts.Slots && refHead(d.r.Data, d.r.Off) { // a ref node, without value's call
						off := d.r.Off
						d.r.Off += 5
						d.budget-- // value's tick
						if d.skelRef(off) {
							continue
						}
						if _, err := d.refNode(off); err != nil {
							return nil, err
						}
					} else if _, err := d.value(); err != nil { // not plain: no run to look for
						return nil, err
					}
				} else if n, items := d.plainRun(left); items > 0 { // as they are, at once
					d.skel.buf = append(d.skel.buf, d.r.Data[d.r.Off:d.r.Off+n]...)
					d.r.Off += n
					left -= items - 1
				} else if _, err := d.value(); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
		list := make([]any, h.Arg)
		for i := range list {
			var err error
			if list[i], err = d.value(); err != nil {
				return nil, err
			}
		}
		return list, nil
	case cbor.MajorMap:
		return d.mapValue(h.Arg, off)
	case cbor.MajorTag:
		if h.Arg == TagRef && !d.mode.opts.Slots { // the commonest tag of many, without tagged's call
			if d.skel != nil && d.skelRef(off) {
				return nil, nil
			}
			return d.refNode(off)
		}
		return d.tagged(h.Arg, off)
	}
	if d.skel != nil && h.AI == cbor.AIFloat64 { // the common float: no Go value needed
		d.skel.buf = cbor.AppendFloat64(d.skel.buf, math.Float64frombits(h.Arg))
		return nil, nil
	}
	return d.out(d.simple(h, off))
}

// refHead reports whether a tag TagRef starts at b[i], in its usual
// four-byte head.
func refHead(b []byte, i int) bool {
	return len(b)-i >= 5 && b[i] == 0xda && binary.BigEndian.Uint32(b[i+1:]) == TagRef
}

// smallInt reports whether an item that starts with b is an integer of
// one byte, from -24 to 23: the whole item.
func smallInt(b byte) bool { return b < 0x40 && b&0x1f < 24 }

// plainStart reports whether an item that starts with b is one plainRun
// takes.
func plainStart(b byte) bool { return smallInt(b) || b == 0xfb }

// plainRun returns the bytes and the number of the items, up to most,
// that come next and that a skeleton holds as they are (value writes the
// same bytes): integers in their shortest form and float64s. It counts
// them against the poll budget, and stops where the walk is due to
// poll, for value.
func (d *decoder) plainRun(most uint64) (n int, items uint64) {
	data := d.r.Data[d.r.Off:]
	k := min(most, uint64(max(d.budget, 0)))
	for ; items < k && n < len(data); items++ {
		var size int
		switch b := data[n]; {
		case smallInt(b):
			size = 1
		case b < 0x40 && b&0x1f <= 27:
			if size = 1<<(b&0x1f-24) + 1; len(data)-n < size || !shortest(data[n+1:n+size]) {
				size = 0
			}
		case b == 0xfb && len(data)-n >= 9:
			size = 9
		}
		if size == 0 {
			break
		}
		n += size
	}
	d.budget -= int(items)
	return n, items
}

// shortest reports whether arg, the argument bytes of an integer head
// of more than one byte, could not be written in fewer: the form
// AppendHead writes.
func shortest(arg []byte) bool {
	if len(arg) == 1 {
		return arg[0] >= 24
	}
	hi := arg[0]
	if len(arg) >= 4 {
		hi |= arg[1]
	}
	if len(arg) == 8 {
		hi |= arg[2] | arg[3]
	}
	return hi != 0
}

// out is the output of an item read as Go value v: v itself, or v
// written into the skeleton.
func (d *decoder) out(v any, err error) (any, error) {
	if err != nil || d.skel == nil {
		return v, err
	}
	return nil, d.skel.encode(v, 0)
}

// intValue is the value of an integer head: an int64 when it fits.
func intValue(h cbor.Head) any {
	switch {
	case h.Arg <= math.MaxInt64 && h.Major == cbor.MajorUint:
		return int64(h.Arg)
	case h.Arg <= math.MaxInt64:
		return ^int64(h.Arg)
	case h.Major == cbor.MajorUint:
		return h.Arg
	}
	n := new(big.Int).SetUint64(h.Arg)
	return n.Neg(n.Add(n, bigOne))
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

// mapValue reads a map of n pairs (its head at off). A map whose keys
// are all text is a map[string]any (in a skeleton, a map); any other is
// a Map of its pairs in message order (tag tagSkelPairs). mapKeys holds
// the key rules.
func (d *decoder) mapValue(n uint64, off int) (any, error) {
	if 2*n > uint64(d.r.Remaining()) {
		return nil, d.syntax(off, cbor.ErrTruncated)
	}
	keys := mapKeys{first: d.r.Off}
	var strs map[string]any
	var pairs Map
	var start, parts int // where the skeleton's map head is
	if e := d.skel; e != nil {
		start, parts = len(e.buf), len(e.parts)
		e.buf = cbor.AppendHead(e.buf, cbor.MajorMap, n)
	} else {
		strs = make(map[string]any, n)
	}
	for i := uint64(0); i < n; i++ {
		koff := d.r.Off
		if !keys.mixed && d.r.Remaining() > 0 && d.r.Data[koff]>>5 == cbor.MajorText {
			h, _, err := d.head()
			if err != nil {
				return nil, err
			}
			k, err := d.r.ReadN(h.Arg)
			if err != nil {
				return nil, d.syntax(koff, err)
			}
			if e := d.skel; e != nil {
				e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(k)))
				e.buf = append(e.buf, k...)
			}
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			if !keys.ordered(k) {
				if err := keys.text(d, i, k, koff); err != nil {
					return nil, err
				}
			}
			if strs != nil {
				strs[string(k)] = v
			}
			continue
		}
		if !keys.mixed { // the first key that is not text: a Map
			keys.mix(d, i)
			if d.skel != nil {
				d.skel.reheadPairs(start, parts, n)
			} else {
				pairs = make(Map, 0, n)
				d.eachTextKey(keys.first, i, func(k []byte) { pairs = append(pairs, Pair{string(k), strs[string(k)]}) })
				strs = nil
			}
		}
		k, v, err := d.pair(&keys)
		if err != nil {
			return nil, err
		}
		if d.skel == nil {
			pairs = append(pairs, Pair{k, v})
		}
	}
	switch {
	case d.skel != nil:
		return nil, nil
	case pairs != nil:
		return pairs, nil
	}
	return strs, nil
}

// pair reads a map key of any kind and its value, and checks the key.
// The key is a Go value whatever the output, written into a skeleton as
// its encoding.
func (d *decoder) pair(keys *mapKeys) (k, v any, err error) {
	koff := d.r.Off
	skel := d.skel
	if end, ok := canonicalKey(d.r.Data, koff); ok { // its bytes are its encoding
		enc := d.r.Data[koff:end]
		if skel != nil { // no Go value needed
			d.r.Off = end
			skel.buf = append(skel.buf, enc...)
		} else if k, err = d.value(); err != nil {
			return nil, nil, err
		}
		if v, err = d.value(); err != nil {
			return nil, nil, err
		}
		if err := keys.add(k, enc, nil, koff); err != nil {
			return nil, nil, err
		}
		return k, v, nil
	}
	d.skel = nil
	k, err = d.value()
	d.skel = skel
	if err != nil {
		return nil, nil, err
	}
	enc, kerr := appendKey(nil, k)
	if skel != nil {
		skel.buf = append(skel.buf, enc...)
	}
	if v, err = d.value(); err != nil {
		return nil, nil, err
	}
	if err := keys.add(k, enc, kerr, koff); err != nil {
		return nil, nil, err
	}
	return k, v, nil
}

// mapKeys are the key rules of a map, applied as its keys come, each
// after its value: a key is an integer, string, byte string, bool or nil
// (appendKey), and no two keys encode alike. Text keys in canonical
// order, as every encoder here writes them, need no set to tell that
// none repeats.
type mapKeys struct {
	first int                 // the offset of the map's first key
	prev  []byte              // the last text key, while they come in canonical order
	seen  map[string]struct{} // encoded keys, once order alone cannot tell
	mixed bool                // a key that is not text came: the map is a Map
}

// ordered reports whether text key k comes after the one before it in
// canonical order (the first key: if it is not empty), so that it
// repeats none; it is then the one before the next.
func (mk *mapKeys) ordered(k []byte) bool {
	if mk.seen == nil && textLess(mk.prev, k) {
		mk.prev = k
		return true
	}
	return false
}

// text checks text key k, the map's i-th, at koff, when ordered cannot
// tell: against the set of the keys before it.
func (mk *mapKeys) text(d *decoder, i uint64, k []byte, koff int) error {
	if mk.seen == nil {
		mk.seen = d.textKeySet(mk.first, i)
	}
	var enc []byte
	if end, ok := canonicalKey(d.r.Data, koff); ok {
		enc = d.r.Data[koff:end] // the key as it stands: no copy to look it up
	} else {
		enc = append(cbor.AppendHead(nil, cbor.MajorText, uint64(len(k))), k...)
	}
	if _, dup := mk.seen[string(enc)]; dup {
		return errorAt(KindSyntax, koff, "duplicate map key %q", k)
	}
	mk.seen[string(enc)] = struct{}{}
	return nil
}

// mix turns to keys of any kind after i text keys.
func (mk *mapKeys) mix(d *decoder, i uint64) {
	mk.mixed = true
	if mk.seen == nil {
		mk.seen = d.textKeySet(mk.first, i)
	}
}

// add checks key k of any kind, at koff: enc is its encoding, kerr
// appendKey's error.
func (mk *mapKeys) add(k any, enc []byte, kerr error, koff int) error {
	if kerr != nil {
		return errorAt(KindProtocol, koff, "map key is %s, not an integer, text, byte string, boolean or null", describe(k))
	}
	if _, dup := mk.seen[string(enc)]; dup {
		return errorAt(KindSyntax, koff, "duplicate map key %x", enc)
	}
	mk.seen[string(enc)] = struct{}{}
	return nil
}

// canonicalKey returns where the map key at off in b (which the scan
// accepted) ends, when it is an integer within int64, a byte string or a
// text string whose head has the shortest form: its bytes are then its
// canonical encoding, appendKey's, and ok is true.
func canonicalKey(b []byte, off int) (end int, ok bool) {
	if off >= len(b) {
		return 0, false
	}
	c := b[off]
	major, ai := c>>5, c&0x1f
	if major > cbor.MajorText {
		return 0, false
	}
	var arg, least uint64 // least: the smallest argument of the head's width
	n := 1
	switch {
	case ai < 24:
		arg = uint64(ai)
	case ai == 24 && len(b)-off >= 2:
		arg, n, least = uint64(b[off+1]), 2, 24
	case ai == 25 && len(b)-off >= 3:
		arg, n, least = uint64(binary.BigEndian.Uint16(b[off+1:])), 3, 1<<8
	case ai == 26 && len(b)-off >= 5:
		arg, n, least = uint64(binary.BigEndian.Uint32(b[off+1:])), 5, 1<<16
	case ai == 27 && len(b)-off >= 9:
		arg, n, least = binary.BigEndian.Uint64(b[off+1:]), 9, 1<<32
	default:
		return 0, false
	}
	switch {
	case arg < least:
		return 0, false // a longer head than needed: appendKey writes another
	case major == cbor.MajorNeg && arg > math.MaxInt64:
		return 0, false // a big.Int, as intValue reads it
	case major >= cbor.MajorBytes:
		if arg > uint64(len(b)-off-n) {
			return 0, false
		}
		return off + n + int(arg), true
	}
	return off + n, true
}

// textLess reports whether text key a sorts before b as encoded keys do:
// shorter first, then bytewise.
func textLess(a, b []byte) bool {
	return len(a) < len(b) || len(a) == len(b) && string(a) < string(b)
}

// textKeySet returns the encodings of the n text keys of the map whose
// first key is at off.
func (d *decoder) textKeySet(off int, n uint64) map[string]struct{} {
	seen := make(map[string]struct{}, n)
	d.eachTextKey(off, n, func(k []byte) {
		seen[string(cbor.AppendHead(nil, cbor.MajorText, uint64(len(k))))+string(k)] = struct{}{}
	})
	return seen
}

// eachTextKey calls f with each of the n text keys, already read, of the
// map whose first key is at off.
func (d *decoder) eachTextKey(off int, n uint64, f func(k []byte)) {
	r := cbor.Reader{Data: d.r.Data, Off: off}
	for range n {
		h, _ := r.ReadHead()
		k, _ := r.ReadN(h.Arg)
		f(k)
		_ = skip(&r) // the value
	}
}

// tagged reads the content of tag (its head at off).
func (d *decoder) tagged(tag uint64, off int) (any, error) {
	if d.mode.opts.Slots { // a skeleton's own tags first
		if v, ok, err := d.skelTagged(tag, off); ok {
			return v, err
		}
	}
	switch tag {
	case tagBignumPos, tagBignumNeg:
		return d.out(d.bignum(tag, off))
	case tagArrayRow, tagArrayColumn:
		data, shape, order, ok := d.ndarrayFast(tag)
		if !ok {
			var err error
			if data, shape, order, err = d.ndarrayParts(tag); err != nil {
				return nil, err
			}
		}
		return d.array(data, shape, order, off)
	case TagObject:
		return d.object(off)
	case TagRef:
		return d.refNode(off)
	case TagEnvelope:
		return nil, errorAt(KindProtocol, off, "envelope nested inside a message")
	}
	if isArrayTag(tag) {
		data, err := d.typedArray(tag, off)
		if err != nil {
			return nil, err
		}
		return d.array(data, []int{len(data.bytes) / data.dtype.Size()}, RowMajor, off)
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
	if d.mode.opts.Slots {
		return n, nil // a skeleton's *big.Int stays one (docs/wire-format.md §4.1)
	}
	switch {
	case n.IsInt64():
		return n.Int64(), nil
	case n.IsUint64():
		return n.Uint64(), nil
	}
	return n, nil
}

// object reads the content of tag TagObject: [name, data].
func (d *decoder) object(off int) (any, error) {
	if err := d.expectArray(2); err != nil {
		return nil, err
	}
	name, err := d.typeName()
	if err != nil {
		return nil, err
	}
	if e := d.skel; e != nil {
		e.buf = cbor.AppendHead(e.buf, cbor.MajorTag, TagObject)
		e.buf = cbor.AppendHead(e.buf, cbor.MajorArray, 2)
		e.buf = cbor.AppendHead(e.buf, cbor.MajorText, uint64(len(name)))
		e.buf = append(e.buf, name...)
	}
	data, err := d.value()
	if err != nil {
		return nil, err
	}
	t := d.mode.opts.Registry.lookupName(name)
	if t == nil && d.mode.opts.UnknownTypes == UnknownAsError {
		// Refused while planning, whatever the output: before anything
		// is placed or downloaded.
		return nil, &Error{Kind: KindUnregistered, Offset: int64(off), Msg: "typed object " + strconv.Quote(name) + " is not registered"}
	}
	switch {
	case d.skel != nil:
		return nil, nil
	case !d.recompose || t == nil:
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

// ndarrayFast is ndarrayParts for the form small arrays have (the one
// scanner.ndarray takes, with dimensions of fewer than 24 and a typed
// array whose payload is whole elements), read at once, and reports
// whether it was of that form; if not, it has read nothing and
// ndarrayParts reports what is wrong. A message of many small arrays
// costs a wasm guest a call per item otherwise.
func (d *decoder) ndarrayFast(tag uint64) (data typedData, shape []int, order Order, ok bool) {
	b, i := d.r.Data, d.r.Off
	if generalOnly || len(b)-i < 4 || b[i] != 0x82 || b[i+1]>>5 != cbor.MajorArray || b[i+1]&0x1f >= 24 {
		return data, nil, 0, false
	}
	shape = d.newInts(int(b[i+1] & 0x1f))
	i += 2
	for j := range shape {
		if i >= len(b) || b[i] >= 24 {
			d.releaseInts(shape)
			return data, nil, 0, false
		}
		shape[j] = int(b[i])
		i++
	}
	var t typedArrayTag
	if len(b)-i >= 3 && b[i] == 0xd8 {
		t, ok = lookupTypedArrayTag(uint64(b[i+1]))
	}
	n, at := 0, -1
	if ok {
		n, at = bytesHead(b, i+2)
	}
	if at < 0 || n > len(b)-at || n%t.dtype.Size() != 0 {
		d.releaseInts(shape)
		return data, nil, 0, false
	}
	d.r.Off = at + n
	order = RowMajor
	if tag == tagArrayColumn {
		order = ColumnMajor
	}
	return typedData{t.dtype, t.bigEndian, b[at : at+n], at}, shape, order, true
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
	shape := d.newInts(int(n))
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
	h, off, err := d.head()
	if err != nil {
		return 0, err
	}
	if h.Major != cbor.MajorText {
		return 0, errorAt(KindProtocol, off, "expected a text string")
	}
	name, err := d.r.ReadN(h.Arg)
	if err != nil {
		return 0, d.syntax(off, err)
	}
	dt := dtypeNamed(name)
	if dt == DTypeInvalid {
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

// array checks inline array data against its shape and the limits, and
// makes it a slot; a skeleton keeps one of fewer than arraySlotMin bytes
// inside.
func (d *decoder) array(data typedData, dims []int, order Order, off int) (any, error) {
	if d.mode.opts.Slots {
		return nil, errorAt(KindProtocol, off, "an RFC 8746 array in a skeleton: arrays cross as slots or with the skeleton's own tag")
	}
	n, err := d.checkArray(data, dims, off)
	if err != nil {
		return nil, err
	}
	if d.skel != nil && int64(n) < d.arraySlotMin {
		d.skel.appendInlineArray(data, dims, order)
		return nil, nil
	}
	i := d.plan.add(Slot{DType: data.dtype, Shape: dims, Order: order, Bytes: int64(n),
		Inline: data.bytes, Offset: int64(data.off), Swap: data.bigEndian, Batch: -1, Node: int64(off)})
	if d.skel != nil {
		d.skel.appendSlot(i)
		return nil, nil
	}
	return i, nil
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
