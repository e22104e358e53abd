package core

import "iter"

// Chunks yields the ranges, as offset and length, in which a fetcher
// downloads item mi of the manifest: chunkSize bytes each (DefaultChunkSize
// when chunkSize <= 0), rounded up to a whole number of the manifest's
// pieces, so that every range starts on a piece and ends on one or at the
// item's end, as download protocol 2 asks, and each piece's CRC can be
// checked as it arrives. The last range may be shorter; an empty item has
// none.
func (m *Manifest) Chunks(mi *ManifestItem, chunkSize int64) iter.Seq2[int64, int64] {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	bs := int64(m.BlockSize) // at most 2^31-1: the sum cannot overflow
	size := (chunkSize + bs - 1) / bs * bs
	return func(yield func(off, n int64) bool) {
		for off := int64(0); off < mi.Bytes; off += size {
			if !yield(off, min(size, mi.Bytes-off)) {
				return
			}
		}
	}
}
