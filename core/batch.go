package core

import (
	"crypto/subtle"
	"fmt"
	"io"
	"math"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core/internal/cbor"
	"github.com/viacodec/viacodec/core/internal/crc32c"
)

// TokenSize is the size of a batch's capability token in bytes.
const TokenSize = 32

// DefaultBlockSize is the piece size of a manifest: a source checksums and
// sends each item in pieces of this many bytes (the last may be shorter).
const DefaultBlockSize = 1 << 20

// BatchRef is a batch descriptor as it travels in a message's side table:
// where the batch is, which it is, and the capability to read it.
type BatchRef struct {
	Source string          // address of the source's download server
	RefID  uuid.UUID       // fresh UUID v4 per batch
	Token  [TokenSize]byte // capability token; whoever holds it may read the batch
	Items  int             // number of items
	Bytes  int64           // total bytes of all items
	// Holder, when not empty, is the base URL of a Host that holds the
	// batch's bytes for its origin, Source: a caching relay, or the Host
	// an unreachable source uploaded the batch to. Receivers send their
	// requests there; the transaction stays the origin's.
	Holder string
}

// String describes the batch without its token.
func (r BatchRef) String() string {
	if r.Holder != "" {
		return fmt.Sprintf("batch %s of %s held at %s (%d items, %d bytes)", r.RefID, r.Source, r.Holder, r.Items, r.Bytes)
	}
	return fmt.Sprintf("batch %s at %s (%d items, %d bytes)", r.RefID, r.Source, r.Items, r.Bytes)
}

// Where returns the base URL a receiver sends the batch's requests to:
// Holder when there is one, else Source.
func (r BatchRef) Where() string {
	if r.Holder != "" {
		return r.Holder
	}
	return r.Source
}

// TokenEqual reports, in constant time, whether token is the batch's token.
func (r *BatchRef) TokenEqual(token []byte) bool {
	return subtle.ConstantTimeCompare(r.Token[:], token) == 1
}

// Item is one array of a batch: a view of the caller's memory, or, for an
// array held elsewhere, its Extern.
type Item struct {
	ID    int
	DType DType
	Shape []int
	Order Order
	Data  []byte
	// Extern, when not nil, is the array the item was encoded from, whose
	// bytes are held elsewhere: Data is nil.
	Extern *Extern
}

// Batch is what an encode by reference produced: the descriptor and the
// items, which view the caller's arrays until the batch is published and its
// transaction ends.
type Batch struct {
	Ref   BatchRef
	Items []Item
}

func newBatch(r io.Reader, source string) (*Batch, error) {
	ref, err := mintBatchRef(r, source)
	if err != nil {
		return nil, err
	}
	return &Batch{Ref: ref}, nil
}

// Manifest returns the batch's manifest: what each item is. It reads no
// item byte: the checksums travel with the bytes, each piece's computed as
// it is sent (docs/download-protocol.md §5.2). The entries of items held
// elsewhere (Item.Extern) describe their Extern arrays.
func (b *Batch) Manifest() *Manifest {
	m := &Manifest{RefID: b.Ref.RefID, BlockSize: DefaultBlockSize, Items: make([]ManifestItem, len(b.Items))}
	for i, it := range b.Items {
		m.Items[i] = ManifestItem{ID: it.ID, DType: it.DType, Shape: it.Shape, Order: it.Order, Bytes: it.Size()}
	}
	return m
}

// Manifest describes a batch's items for its receivers: what each is, and
// the piece size (BlockSize) that cuts each item into the pieces a source
// checksums as it sends them.
type Manifest struct {
	RefID     uuid.UUID
	BlockSize int
	Items     []ManifestItem
}

// ManifestItem is one item of a Manifest.
type ManifestItem struct {
	ID    int
	DType DType
	Shape []int
	Order Order
	Bytes int64
}

// Checksum returns the CRC-32C (Castagnoli) of b: the checksum of one
// piece.
func Checksum(b []byte) uint32 { return crc32c.Checksum(b) }

// ChecksumUpdate returns the Checksum of a piece whose first bytes had crc
// and that goes on with b, so that a piece can be checksummed part by
// part as it arrives.
func ChecksumUpdate(crc uint32, b []byte) uint32 { return crc32c.Update(crc, b) }

// Item returns the manifest entry with the given item id.
func (m *Manifest) Item(id int) (*ManifestItem, bool) {
	for i := range m.Items {
		if m.Items[i].ID == id {
			return &m.Items[i], true
		}
	}
	return nil, false
}

// MarshalManifest encodes m as CBOR (download protocol 2):
// [ref_id, piece_size, [* [item, dtype, shape, order, bytes]]].
func MarshalManifest(m *Manifest) []byte {
	b := cbor.AppendHead(nil, cbor.MajorArray, 3)
	b = cbor.AppendHead(b, cbor.MajorBytes, 16)
	b = append(b, m.RefID[:]...)
	b = cbor.AppendHead(b, cbor.MajorUint, uint64(m.BlockSize))
	b = cbor.AppendHead(b, cbor.MajorArray, uint64(len(m.Items)))
	for _, it := range m.Items {
		b = cbor.AppendHead(b, cbor.MajorArray, 5)
		b = cbor.AppendHead(b, cbor.MajorUint, uint64(it.ID))
		name := it.DType.String()
		b = cbor.AppendHead(b, cbor.MajorText, uint64(len(name)))
		b = append(b, name...)
		b = cbor.AppendHead(b, cbor.MajorArray, uint64(len(it.Shape)))
		for _, d := range it.Shape {
			b = cbor.AppendHead(b, cbor.MajorUint, uint64(d))
		}
		b = cbor.AppendHead(b, cbor.MajorUint, uint64(it.Order))
		b = cbor.AppendHead(b, cbor.MajorUint, uint64(it.Bytes))
	}
	return b
}

// UnmarshalManifest decodes a manifest written by MarshalManifest and checks
// that it is consistent: shapes match byte lengths, no duplicate items, and
// no more than maxItems items.
func UnmarshalManifest(data []byte, maxItems int) (*Manifest, error) {
	d := &decoder{mode: defaultDecMode, r: cbor.Reader{Data: data}}
	if err := d.expectArray(3); err != nil {
		return nil, err
	}
	m := &Manifest{}
	id, err := d.bytesN(16)
	if err != nil {
		return nil, err
	}
	copy(m.RefID[:], id)
	bs, err := d.uint()
	if err != nil {
		return nil, err
	}
	if bs == 0 || bs > math.MaxInt32 {
		return nil, errorf(KindProtocol, "manifest piece size %d", bs)
	}
	m.BlockSize = int(bs)
	n, err := d.arrayHead()
	if err != nil {
		return nil, err
	}
	if n > uint64(maxItems) || n > uint64(d.r.Remaining()) {
		return nil, errorf(KindLimit, "manifest lists %d items, more than %d", n, maxItems)
	}
	m.Items = make([]ManifestItem, 0, n)
	seen := make(map[int]bool, n)
	for range n {
		it, err := d.manifestItem()
		if err != nil {
			return nil, err
		}
		if seen[it.ID] {
			return nil, errorf(KindProtocol, "manifest lists item %d twice", it.ID)
		}
		seen[it.ID] = true
		m.Items = append(m.Items, it)
	}
	if d.r.Remaining() != 0 {
		return nil, errorAt(KindSyntax, d.r.Off, "trailing data after manifest")
	}
	return m, nil
}

func (d *decoder) manifestItem() (ManifestItem, error) {
	var it ManifestItem
	if err := d.expectArray(5); err != nil {
		return it, err
	}
	id, err := d.uint()
	if err != nil {
		return it, err
	}
	if id > math.MaxInt32 {
		return it, errorf(KindProtocol, "manifest item id %d", id)
	}
	it.ID = int(id)
	if it.DType, err = d.dtypeName(); err != nil {
		return it, err
	}
	if it.Shape, err = d.dims(); err != nil {
		return it, err
	}
	if it.Order, err = d.order(); err != nil {
		return it, err
	}
	nbytes, err := d.uint()
	if err != nil {
		return it, err
	}
	if want, ok := byteLen(it.DType, it.Shape); !ok || want != nbytes {
		return it, errorf(KindMismatch, "manifest item %d: %s %v is not %d bytes", it.ID, it.DType, it.Shape, nbytes)
	}
	it.Bytes = int64(nbytes)
	return it, nil
}
