package core

import "testing"

// TestSumPieces: SumPieces computes the sum of every piece of an open
// transaction's items that was not known, and leaves a known one as it
// was; it computes nothing once stop is closed or the transaction has
// ended.
func TestSumPieces(t *testing.T) {
	src := newNode(t, "server", nil)
	big, small := f32Array(t, (2<<20+100)/4, 0), f32Array(t, 100, 1) // 3 pieces, 1 piece
	_, tx := src.send(t, []any{big, small}, PublishOptions{})
	ref := tx.Ref()
	sums := src.table.PieceSums(ref.RefID, ref.Token[:])
	sums.Set(0, 1, 0xdeadbeef) // known: left as it is

	stopped := make(chan struct{})
	close(stopped)
	tx.SumPieces(stopped)
	if _, ok := sums.Get(0, 0); ok {
		t.Fatal("a piece summed after stop was closed")
	}

	tx.SumPieces(nil)
	items := tx.batch.Items
	for _, c := range []struct {
		item int
		k    int64
		want uint32
	}{
		{0, 0, Checksum(items[0].Data[:DefaultBlockSize])},
		{0, 1, 0xdeadbeef},
		{0, 2, Checksum(items[0].Data[2*DefaultBlockSize:])},
		{1, 0, Checksum(items[1].Data)},
	} {
		if got, ok := sums.Get(c.item, c.k); !ok || got != c.want {
			t.Errorf("item %d piece %d: %08x %v, want %08x", c.item, c.k, got, ok, c.want)
		}
	}

	_, tx = src.send(t, []any{big}, PublishOptions{})
	ref = tx.Ref()
	sums = src.table.PieceSums(ref.RefID, ref.Token[:])
	tx.Abort()
	tx.SumPieces(nil)
	if _, ok := sums.Get(0, 0); ok {
		t.Fatal("a piece summed after the transaction ended")
	}
}
