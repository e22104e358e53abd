package core

import "sync/atomic"

// PieceGrid is a batch's items cut into the pieces of its manifest: what a
// receipt needs served (Table.Confirm), for a source and for a relay that
// forwards receipts (hostdl).
type PieceGrid struct {
	block int64
	first map[int]int   // the index of each item's first piece, over the batch
	size  map[int]int64 // each item's bytes
	total int           // the batch's pieces
}

// PieceGrid returns the grid of m's pieces.
func (m *Manifest) PieceGrid() *PieceGrid {
	g := newPieceGrid(int64(m.BlockSize), len(m.Items))
	for _, mi := range m.Items {
		g.add(mi.ID, mi.Bytes)
	}
	return g
}

func batchPieceGrid(b *Batch) *PieceGrid {
	g := newPieceGrid(DefaultBlockSize, len(b.Items))
	for _, it := range b.Items {
		g.add(it.ID, it.Size())
	}
	return g
}

func newPieceGrid(block int64, items int) *PieceGrid {
	return &PieceGrid{block: max(block, 1), first: make(map[int]int, items), size: make(map[int]int64, items)}
}

func (g *PieceGrid) add(item int, size int64) {
	g.first[item], g.size[item] = g.total, size
	g.total += int((size + g.block - 1) / g.block)
}

// Served is which pieces of a batch were served to one receiver or hop: a
// bit per piece, made at its first piece. The zero value is none.
type Served struct {
	bits []uint64
	n    int // bits set
}

// Mark records the whole pieces of range [off, off+n) of item as served
// to s: those the range covers from their start to their end, and the
// item's last one when the range ends at the item's end. A range outside
// the grid marks nothing.
func (g *PieceGrid) Mark(s *Served, item int, off, n int64) {
	first, ok := g.first[item]
	size := g.size[item]
	if !ok || off < 0 || n < 0 || off+n > size {
		return
	}
	k := (off + g.block - 1) / g.block
	end := (off + n) / g.block
	if off+n == size {
		end = (size + g.block - 1) / g.block
	}
	for ; k < end; k++ {
		if s.bits == nil {
			s.bits = make([]uint64, (g.total+63)/64)
		}
		i := first + int(k)
		if w, b := i/64, uint64(1)<<(i%64); s.bits[w]&b == 0 {
			s.bits[w] |= b
			s.n++
		}
	}
}

// All reports whether every piece of the batch was served to s.
func (g *PieceGrid) All(s *Served) bool { return s.n == g.total }

// Partial reports whether a fetch of items (each a different item of m)
// leaves out some of m's items. Its receipt is then no delivery of the
// batch: a source refuses it (KindAuth) until this receiver was served
// every piece (Table.Confirm), as when another fetch of the same receiver
// still downloads the rest, and the fetcher then counts its own fetch as
// done all the same.
func (m *Manifest) Partial(items []FetchItem) bool { return len(items) < len(m.Items) }

// PieceSums holds the checksums (Checksum) of a batch's pieces that a
// source has computed, so that it checksums each piece once however many
// receivers it serves: a source that sends a piece whose sum it knows
// sends both in one write, and one that does not computes the sum as it
// sends and remembers it (docs/download-protocol.md §9). A piece's sum is
// known from its first send, or once summed ahead (Transaction.SumPieces),
// to the end of the batch's transaction.
// Its methods are safe for concurrent use; on a nil *PieceSums no sum is
// known and none is kept.
type PieceSums struct {
	grid *PieceGrid
	sums []atomic.Uint64 // per piece of the grid: known<<32 | sum
}

// NewPieceSums returns an empty PieceSums for the pieces of g, for a
// server of pieces other than a Table's (a relay).
func NewPieceSums(g *PieceGrid) *PieceSums {
	return &PieceSums{grid: g, sums: make([]atomic.Uint64, g.total)}
}

// index returns the grid index of piece k of item, or false.
func (s *PieceSums) index(item int, k int64) (int, bool) {
	if s == nil {
		return 0, false
	}
	first, ok := s.grid.first[item]
	if !ok || k < 0 || k >= (s.grid.size[item]+s.grid.block-1)/s.grid.block {
		return 0, false
	}
	return first + int(k), true
}

// Get returns the sum of piece k of item (the bytes from k times the
// piece size), and whether it is known.
func (s *PieceSums) Get(item int, k int64) (uint32, bool) {
	i, ok := s.index(item, k)
	if !ok {
		return 0, false
	}
	v := s.sums[i].Load()
	return uint32(v), v>>32 != 0
}

// Set records the sum of piece k of item. A piece outside the batch is
// ignored.
func (s *PieceSums) Set(item int, k int64, sum uint32) {
	if i, ok := s.index(item, k); ok {
		s.sums[i].Store(1<<32 | uint64(sum))
	}
}
