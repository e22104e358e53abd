package hostdl

import (
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// Table is what a Server serves: the published batches and their
// transactions. *core.Table implements it, and so can a table that lives
// elsewhere (a wasm guest's, whose item bytes the host holds). Its methods
// are those of core.Table, with the same contracts.
type Table interface {
	// Manifest returns the manifest of refID for receiver and the nonce
	// its receipt must carry.
	Manifest(refID uuid.UUID, token []byte, receiver string) (*core.Manifest, string, error)
	// ServeVia returns bytes [off, off+n) of an item, fetched by hop for
	// receiver (hop "" is none), as a view that stays valid until release
	// is called.
	ServeVia(refID uuid.UUID, token []byte, receiver, hop string, item int, off, n int64) (data []byte, release func(), err error)
	// ConfirmVia records a receiver's receipt, forwarded by hop.
	ConfirmVia(refID uuid.UUID, token []byte, receiver, hop, nonce string) error
	// Sweep ends the transactions inactive at now and returns how many.
	Sweep(now time.Time) int
	// Stats returns the table's counters.
	Stats() core.Stats
}

var _ Table = (*core.Table)(nil)

// pieceSumTable is a Table that remembers the checksums of its pieces
// (core.Table): its server checksums each piece once for all receivers
// and sends a known sum in one write with its piece.
type pieceSumTable interface {
	PieceSums(refID uuid.UUID, token []byte) *core.PieceSums
}

// pieceTable is a Table that holds an item in pieces of its own (a relay):
// it serves a range across them piece by piece, as views its server
// writes in turn, rather than as one view it would have to copy.
type pieceTable interface {
	ServePieces(refID uuid.UUID, token []byte, receiver, hop string, item int, off, n int64) (next func() ([]byte, error), release func(), err error)
}

var (
	_ pieceTable    = relayTable{}
	_ pieceSumTable = (*core.Table)(nil)
	_ pieceSumTable = relayTable{}
)
