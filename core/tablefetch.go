package core

import (
	"context"
)

// DefaultChunkSize is the size of the ranges a fetcher asks for.
const DefaultChunkSize = 4 << 20

// TableFetcher fetches batches from Tables in the same process, through the
// same manifest, ranged serves and receipts as a remote fetcher. It serves
// in-process rounds (simulations, tests) and is the reference for what a
// Fetcher must do; the pieces' checksums guard a transport, and it has
// none (it copies from the source's memory).
type TableFetcher struct {
	// Sources maps a batch's Source to the table that serves it.
	Sources map[string]*Table
	// Receiver is this receiver's id, reported to the source.
	Receiver string
	// ChunkSize is the range size; it is rounded up to a whole number of
	// the manifest's pieces. Default 4 MiB.
	ChunkSize int
}

// Fetch implements Fetcher.
func (f *TableFetcher) Fetch(ctx context.Context, batch BatchRef, items []FetchItem) error {
	t := f.Sources[batch.Source]
	if t == nil {
		return errorf(KindUnavailable, "no source %q", batch.Source)
	}
	m, nonce, err := t.Manifest(batch.RefID, batch.Token[:], f.Receiver)
	if err != nil {
		return err
	}
	for _, it := range items {
		mi, err := m.CheckItem(it)
		if err != nil {
			return err
		}
		for off, n := range m.Chunks(mi, int64(f.ChunkSize)) {
			if err := ctx.Err(); err != nil {
				return errorf(KindAborted, "fetch of %s: %v", batch, err)
			}
			data, release, err := t.Serve(batch.RefID, batch.Token[:], f.Receiver, it.ID, off, n)
			if err != nil {
				return err
			}
			copy(it.Dst[off:off+n], data)
			release()
		}
	}
	err = t.Confirm(batch.RefID, batch.Token[:], f.Receiver, nonce)
	if m.Partial(items) && KindOf(err) == KindAuth {
		return nil // no delivery of the batch yet (Manifest.Partial)
	}
	return err
}
