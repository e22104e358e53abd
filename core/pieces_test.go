package core

import (
	"context"
	"errors"
	"testing"
)

// serveAll serves every item of ref to receiver, whole, as a fetch before
// its receipt would.
func serveAll(t *testing.T, table *Table, ref BatchRef, receiver string) {
	t.Helper()
	m, _, err := table.Manifest(ref.RefID, ref.Token[:], receiver)
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range m.Items {
		_, release, err := table.Serve(ref.RefID, ref.Token[:], receiver, mi.ID, 0, mi.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
}

// TestServedElsewhere: a transaction whose bytes a holder serves out of
// the table's sight (an object store) takes a receipt with a nonce alone.
func TestServedElsewhere(t *testing.T) {
	src := newNode(t, "server", nil)
	_, tx := src.send(t, []any{f32Array(t, 1<<18, 0)}, PublishOptions{Receivers: 1})
	ref := tx.Ref()
	_, nonce, err := src.table.Manifest(ref.RefID, ref.Token[:], "agent")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.table.Confirm(ref.RefID, ref.Token[:], "agent", nonce); !errors.Is(err, ErrAuth) {
		t.Fatalf("receipt before ServedElsewhere: %v, want ErrAuth", err)
	}
	tx.ServedElsewhere()
	if err := src.table.Confirm(ref.RefID, ref.Token[:], "agent", nonce); err != nil {
		t.Fatal(err)
	}
	if out, done := tx.Outcome(); !done || out.State != StateCompleted {
		t.Fatalf("outcome %+v, done %v", out, done)
	}
}

// TestZeroByteReceipt: a token holder that fetches a manifest under a
// fresh id and confirms at once, with nothing downloaded, is refused
// (ErrAuth) and the transaction stays open with no one confirmed; the
// receiver that downloads the batch completes it.
func TestZeroByteReceipt(t *testing.T) {
	src := newNode(t, "server", nil)
	_, tx := src.send(t, []any{f32Array(t, 1<<19, 0)}, PublishOptions{Receivers: 1}) // 2 MiB: 2 pieces
	ref := tx.Ref()
	_, nonce, err := src.table.Manifest(ref.RefID, ref.Token[:], "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.table.Confirm(ref.RefID, ref.Token[:], "fresh", nonce); !errors.Is(err, ErrAuth) {
		t.Fatalf("0-byte receipt: %v, want ErrAuth", err)
	}
	if st, rs := tx.Status(); st != StateOpen || len(rs) != 1 || rs[0].State != ReceiverStarted {
		t.Fatalf("after the refused receipt: %v %+v", st, rs)
	}
	f := &TableFetcher{Sources: map[string]*Table{"server": src.table}, Receiver: "agent"}
	dst := make([]byte, 2<<20)
	if err := f.Fetch(context.Background(), ref, []FetchItem{{ID: 0, DType: DTypeFloat32, Shape: []int{1 << 19}, Dst: dst}}); err != nil {
		t.Fatal(err)
	}
	if out, done := tx.Outcome(); !done || out.State != StateCompleted || len(out.Confirmed()) != 1 || out.Confirmed()[0] != "agent" {
		t.Fatalf("outcome %+v, done %v", out, done)
	}
}
