package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
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

	// File, when set, reaches the same bytes as Dst by WriteAt at offsets
	// from the item's start: a file that Dst maps. A Fetcher may write
	// there instead of Dst (hostdl does: a write to a file costs less
	// than faulting in its mapping); one that ignores File writes Dst.
	File io.WriterAt
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

// Resolve downloads the array through f into Go memory, within the
// default limits (DecMode.Resolve has the mode's).
func (l *LazyRef) Resolve(ctx context.Context, f Fetcher) (*Array, error) {
	if f == nil {
		return nil, errorf(KindInvalid, "LazyRef.Resolve needs a Fetcher")
	}
	m, err := DecOptions{Fetcher: f}.DecMode()
	if err != nil {
		return nil, err
	}
	a, err := m.Resolve(ctx, l)
	if err != nil {
		return nil, err
	}
	return a[0], nil
}

// Resolve downloads lazy refs through the mode's Fetcher into memory from
// its Allocator, all at once (FetchAll). Their declared bytes count
// against MaxArrayBytes before anything is allocated; a ref named twice is
// downloaded once, and both results share the array.
func (m *DecMode) Resolve(ctx context.Context, refs ...*LazyRef) ([]*Array, error) {
	var total int64
	for _, l := range refs {
		n, err := ByteLen(l.DType, l.Shape)
		if err != nil {
			return nil, err
		}
		if l.Order > ColumnMajor {
			return nil, errorf(KindMismatch, "lazy ref %s %v is not a valid array", l.DType, l.Shape)
		}
		if n > m.opts.MaxArrayBytes || total+n > m.opts.MaxArrayBytes {
			return nil, errorf(KindLimit, "lazy refs of more than MaxArrayBytes %d", m.opts.MaxArrayBytes)
		}
		total += n
	}
	type key struct {
		ref  [16]byte
		item int
	}
	arrays := make([]*Array, len(refs))
	seen := map[key]*Array{}
	var downloads []Download
	for i, l := range refs {
		k := key{l.Batch.RefID, l.Item}
		if a := seen[k]; a != nil && a.DType == l.DType && a.Order == l.Order && slices.Equal(a.Shape, l.Shape) {
			arrays[i] = a
			continue
		}
		n := l.Bytes()
		dst, err := m.opts.Allocator(l.DType, l.Shape, l.Order, n)
		if err != nil {
			return nil, &Error{Kind: KindInvalid, Offset: -1, Msg: "allocate destination", Err: err}
		}
		if int64(len(dst)) != n {
			return nil, errorf(KindInvalid, "allocator returned %d bytes for %d", len(dst), n)
		}
		a := &Array{DType: l.DType, Shape: slices.Clone(l.Shape), Order: l.Order, Data: dst}
		arrays[i], seen[k] = a, a
		downloads = append(downloads, Download{Batch: l.Batch, Item: FetchItem{ID: l.Item, DType: a.DType, Shape: a.Shape, Order: a.Order, Dst: dst}})
	}
	if err := FetchAll(ctx, m.opts.Fetcher, downloads); err != nil {
		return nil, err
	}
	return arrays, nil
}

// Download is one referenced array to fetch: its batch, and the item with
// the memory its bytes land in.
type Download struct {
	Batch BatchRef
	Item  FetchItem
}

// FetchAll downloads every item through f: the items of one batch in one
// Fetch, the batches in parallel. An item named twice (same batch, same
// item id) is downloaded once and copied to its other destinations. It is
// all or nothing: on error the destinations' contents are undefined, the
// other batches are cancelled, and the error is the first that is not a
// consequence of that cancelling. It returns only when nothing writes to
// the destinations any more.
func FetchAll(ctx context.Context, f Fetcher, downloads []Download) error {
	if len(downloads) == 0 {
		return nil
	}
	if f == nil {
		return errorf(KindInvalid, "references to download, but no Fetcher")
	}
	type group struct {
		batch BatchRef
		items []FetchItem
	}
	type itemKey struct {
		ref  [16]byte
		item int
	}
	var (
		groups  []*group
		byBatch = map[[16]byte]*group{}
		first   = map[itemKey][]byte{}
		copies  []Download // later destinations of an item, filled from its first
	)
	for _, d := range downloads {
		k := itemKey{d.Batch.RefID, d.Item.ID}
		if dst, dup := first[k]; dup {
			if len(dst) != len(d.Item.Dst) {
				return errorf(KindMismatch, "item %d of %s is wanted as %d and as %d bytes", d.Item.ID, d.Batch, len(dst), len(d.Item.Dst))
			}
			copies = append(copies, d)
			continue
		}
		first[k] = d.Item.Dst
		g := byBatch[d.Batch.RefID]
		if g == nil {
			g = &group{batch: d.Batch}
			byBatch[d.Batch.RefID] = g
			groups = append(groups, g)
		} else if g.batch != d.Batch {
			return errorf(KindProtocol, "two different batch descriptors share ref id %s", d.Batch.RefID)
		}
		g.items = append(g.items, d.Item)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			if err := f.Fetch(ctx, g.batch, g.items); err != nil {
				if _, ok := errors.AsType[*Error](err); !ok {
					err = &Error{Kind: KindUnavailable, Offset: -1, Msg: "fetch " + g.batch.String(), Err: err}
				}
				errs[i] = err
				cancel()
			}
		})
	}
	wg.Wait()
	if err := firstCause(errs); err != nil {
		return err
	}
	for _, d := range copies {
		copy(d.Item.Dst, first[itemKey{d.Batch.RefID, d.Item.ID}])
	}
	return nil
}

// firstCause returns the first error that is not KindAborted (the
// consequence of another's cancelling the rest), else the first error.
func firstCause(errs []error) error {
	var aborted error
	for _, err := range errs {
		switch {
		case err == nil:
		case KindOf(err) != KindAborted:
			return err
		case aborted == nil:
			aborted = err
		}
	}
	return aborted
}
