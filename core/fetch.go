package core

import (
	"context"
	"fmt"
	"slices"
)

// Fetcher downloads referenced arrays. hostdl implements it over HTTP;
// TableFetcher implements it within one process.
type Fetcher interface {
	// Fetch fills the Dst of every item with that item's bytes from the
	// batch's source, checks them against the source's manifest, and then
	// sends the source a receipt for the batch. It returns an *Error whose
	// Kind says what failed (KindUnavailable, KindExpired, KindAuth,
	// KindChecksum, KindTimeout, KindAborted, ...). On error the contents
	// of the Dst buffers are undefined.
	Fetch(ctx context.Context, batch BatchRef, items []FetchItem) error
}

// FetchItem is one array to download: what the ref node said it is, and
// where its bytes go (len(Dst) is its byte length).
type FetchItem struct {
	ID    int
	DType DType
	Shape []int
	Order Order
	Dst   []byte
}

// Allocator returns a buffer of nbytes bytes for a referenced array that
// decode is about to download. Hosts plug in memory the final consumer owns
// (a numpy array, a wasm guest's memory) so bytes land where they stay.
type Allocator func(dtype DType, shape []int, order Order, nbytes int64) ([]byte, error)

func goAllocator(_ DType, _ []int, _ Order, nbytes int64) ([]byte, error) {
	return make([]byte, nbytes), nil
}

// CheckItem returns the manifest's entry for it, or an error when the
// manifest lacks the item (KindUnknownRef) or describes it differently from
// the ref node (KindMismatch).
func (m *Manifest) CheckItem(it FetchItem) (*ManifestItem, error) {
	mi, ok := m.Item(it.ID)
	if !ok {
		return nil, errorf(KindUnknownRef, "batch %s has no item %d", m.RefID, it.ID)
	}
	if mi.DType != it.DType || mi.Order != it.Order || !slices.Equal(mi.Shape, it.Shape) || mi.Bytes != int64(len(it.Dst)) {
		return nil, errorf(KindMismatch, "item %d: message says %s %v %s (%d bytes), source says %s %v %s (%d bytes)",
			it.ID, it.DType, it.Shape, it.Order, len(it.Dst), mi.DType, mi.Shape, mi.Order, mi.Bytes)
	}
	return mi, nil
}

// LazyRef is a referenced array that a pass-through decode did not
// download. Encoding it writes the same ref node and batch descriptor
// again, so the next receiver downloads straight from the source.
type LazyRef struct {
	Batch BatchRef
	Item  int
	DType DType
	Shape []int
	Order Order
}

// String describes the reference without its token.
func (l *LazyRef) String() string {
	return fmt.Sprintf("lazy %s %v item %d of %s", l.DType, l.Shape, l.Item, l.Batch)
}

// Bytes returns the array's size in bytes.
func (l *LazyRef) Bytes() int64 {
	n, _ := byteLen(l.DType, l.Shape)
	return int64(n)
}

// Resolve downloads the array through f into Go memory.
func (l *LazyRef) Resolve(ctx context.Context, f Fetcher) (*Array, error) {
	if f == nil {
		return nil, errorf(KindInvalid, "LazyRef.Resolve needs a Fetcher")
	}
	n, ok := byteLen(l.DType, l.Shape)
	if !ok || !l.DType.Valid() {
		return nil, errorf(KindMismatch, "lazy ref %s %v is not a valid array", l.DType, l.Shape)
	}
	a := &Array{DType: l.DType, Shape: slices.Clone(l.Shape), Order: l.Order, Data: make([]byte, n)}
	err := f.Fetch(ctx, l.Batch, []FetchItem{{ID: l.Item, DType: a.DType, Shape: a.Shape, Order: a.Order, Dst: a.Data}})
	if err != nil {
		return nil, err
	}
	return a, nil
}
