package core

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/internal/fakeclock"
)

// TestRefusedRequestsChangeNothing: a request the table refuses (wrong
// token, unknown item, range outside the item, receipt with a wrong nonce,
// a receiver the publisher did not name, one over MaxReceivers) records no
// receiver and is no activity: the transaction still times out on time,
// and its outcome lists only the receivers that really asked.
func TestRefusedRequestsChangeNothing(t *testing.T) {
	clock := fakeclock.New(fakeclock.Start)
	src := newNode(t, "server", clock)
	w := f32Array(t, 100, 0)
	for _, o := range []PublishOptions{
		{Receivers: 2, Timeout: time.Minute, MaxReceivers: 2},
		{Names: []string{"a", "b"}, Timeout: time.Minute},
	} {
		data, tx := src.send(t, []any{w}, o)
		ref := tx.Ref()
		tok := ref.Token[:]
		bad := bytes.Clone(tok)
		bad[0] ^= 1
		if err := fetchWith(t, src, "a", data); err != nil {
			t.Fatal(err)
		}
		_, nonceB, err := src.table.Manifest(ref.RefID, tok, "b")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(59 * time.Second)
		refused := []struct {
			name string
			err  error
			kind Kind
		}{
			{"wrong token", second(src.table.Serve(ref.RefID, bad, "x", 0, 0, 4)), KindAuth},
			{"unknown item", second(src.table.Serve(ref.RefID, tok, "b", 1, 0, 4)), KindUnknownRef},
			{"range past end", second(src.table.Serve(ref.RefID, tok, "b", 0, 398, 4)), KindInvalid},
			{"wrong nonce", src.table.Confirm(ref.RefID, tok, "b", nonceB[:len(nonceB)-1]+"x"), KindAuth},
			{"forged nonce", src.table.Confirm(ref.RefID, tok, "b", forgedNonce(nonceB)), KindAuth},
		}
		for i := range 50 {
			id := fmt.Sprintf("invented-%d", i)
			want := KindLimit
			if o.Names != nil {
				want = KindAuth
			}
			refused = append(refused,
				struct {
					name string
					err  error
					kind Kind
				}{"manifest of " + id, lastErr(src.table.Manifest(ref.RefID, tok, id)), want},
				struct {
					name string
					err  error
					kind Kind
				}{"receipt of " + id, src.table.Confirm(ref.RefID, tok, id, nonceB), want})
		}
		for _, r := range refused {
			if KindOf(r.err) != r.kind {
				t.Errorf("%v: %s: %v, want kind %v", o.Names, r.name, r.err, r.kind)
			}
		}
		if n := src.table.Sweep(clock.Advance(time.Second)); n != 1 {
			t.Fatalf("%v: refused requests kept the transaction alive", o.Names)
		}
		out, _ := tx.Outcome()
		var ids []string
		for _, r := range out.Receivers {
			ids = append(ids, r.ID)
		}
		if out.State != StateTimedOut || !slices.Equal(ids, []string{"a", "b"}) || out.Receivers[1].State != ReceiverFailed {
			t.Errorf("%v: outcome %v, receivers %+v", o.Names, out.State, out.Receivers)
		}
	}
}

// fetchWith decodes data as receiver, fetching from src.
func fetchWith(t *testing.T, src *node, receiver string, data []byte) error {
	t.Helper()
	_, err := receiverMode(t, receiver, src).Decode(data)
	return err
}

// TestNamedReceivers: a publisher that names its receivers lets only them
// in; the transaction completes when all of them (or Receivers of them)
// confirmed.
func TestNamedReceivers(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, 100, 0)

	data, tx := src.send(t, []any{w}, PublishOptions{Names: []string{"a", "b"}})
	ref := tx.Ref()
	for _, err := range []error{
		lastErr(src.table.Manifest(ref.RefID, ref.Token[:], "relay")),
		second(src.table.Serve(ref.RefID, ref.Token[:], "relay", 0, 0, 4)),
		src.table.Confirm(ref.RefID, ref.Token[:], "relay", "00"),
		fetchWith(t, src, "A", data), // ids are compared byte for byte
	} {
		if !errors.Is(err, ErrAuth) {
			t.Errorf("an unnamed receiver: %v, want ErrAuth", err)
		}
	}
	if _, rs := tx.Status(); len(rs) != 0 {
		t.Fatalf("refused receivers recorded: %+v", rs)
	}
	for _, id := range []string{"a", "b"} {
		if _, done := tx.Outcome(); done {
			t.Fatalf("ended before %s confirmed", id)
		}
		if err := fetchWith(t, src, id, data); err != nil {
			t.Fatal(err)
		}
	}
	if out, done := tx.Outcome(); !done || out.State != StateCompleted || !slices.Equal(out.Confirmed(), []string{"a", "b"}) {
		t.Fatalf("outcome %+v", out)
	}

	data, tx = src.send(t, []any{w}, PublishOptions{Names: []string{"a", "b", "c"}, Receivers: 1})
	if err := fetchWith(t, src, "c", data); err != nil {
		t.Fatal(err)
	}
	if out, _ := tx.Outcome(); out.State != StateCompleted {
		t.Fatalf("Receivers 1 of 3 named: state %v", out.State)
	}

	data, tx = src.send(t, []any{w}, PublishOptions{Names: []string{}, Receivers: 1})
	if err := fetchWith(t, src, "anyone", data); err != nil {
		t.Fatalf("empty Names: %v", err)
	}
	if out, _ := tx.Outcome(); out.State != StateCompleted {
		t.Fatalf("empty Names: state %v", out.State)
	}

	for _, o := range []PublishOptions{
		{Names: []string{"a", ""}},
		{Names: []string{"a", "a"}},
		{Names: []string{"a\nb"}},                                  // not a receiver id: no receiver could have it
		{Names: []string{strings.Repeat("x", MaxReceiverIDLen+1)}}, // too long
		{Names: []string{"caf\u00e9"}},                             // not ASCII
		{Names: []string{"a"}, Receivers: 2},
		{Names: []string{"a", "b"}, Quorum: 3},
		{MaxReceivers: -1},
		{Receivers: 5, MaxReceivers: 4},
	} {
		if _, err := src.table.Publish(&Batch{}, o); !errors.Is(err, ErrInvalid) {
			t.Errorf("Publish(%+v): %v, want ErrInvalid", o, err)
		}
	}
}

// TestMaxReceivers: a transaction records at most MaxReceivers receivers
// (DefaultMaxReceivers by default); a new one beyond is KindLimit, the
// known ones go on, and the flood is no activity.
func TestMaxReceivers(t *testing.T) {
	clock := fakeclock.New(fakeclock.Start)
	src := newNode(t, "server", clock)
	w := f32Array(t, 100, 0)

	data, tx := src.send(t, []any{w}, PublishOptions{Timeout: time.Minute})
	ref := tx.Ref()
	for i := range DefaultMaxReceivers {
		if _, _, err := src.table.Manifest(ref.RefID, ref.Token[:], fmt.Sprint(i)); err != nil {
			t.Fatalf("receiver %d: %v", i, err)
		}
	}
	clock.Advance(30 * time.Second)
	for i := range 5000 {
		if _, _, err := src.table.Manifest(ref.RefID, ref.Token[:], fmt.Sprint("x", i)); !errors.Is(err, ErrLimit) {
			t.Fatalf("receiver %d over the bound: %v, want ErrLimit", DefaultMaxReceivers+i, err)
		}
	}
	if n := src.table.Stats().ReceiversActive; n != DefaultMaxReceivers {
		t.Fatalf("%d receivers active, want %d", n, DefaultMaxReceivers)
	}
	if err := fetchWith(t, src, "7", data); err != nil {
		t.Fatalf("a known receiver after the flood: %v", err)
	}
	clock.Advance(59 * time.Second)
	if n := src.table.Sweep(clock.Now()); n != 0 {
		t.Fatal("a known receiver's activity did not count")
	}
	for i := range 100 {
		src.table.Manifest(ref.RefID, ref.Token[:], fmt.Sprint("y", i))
	}
	if n := src.table.Sweep(clock.Advance(time.Second)); n != 1 {
		t.Fatal("a flood of receivers over the bound kept the transaction alive")
	}
}

// TestNoncesNotEvicted: a receiver's nonce stays good however many
// manifests are asked for under its id or any other; it is good for that
// receiver and that transaction only.
func TestNoncesNotEvicted(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, 100, 0)
	_, tx := src.send(t, []any{w}, PublishOptions{Receivers: 3})
	_, other := src.send(t, []any{w}, PublishOptions{Receivers: 1})
	ref, oref := tx.Ref(), other.Ref()
	_, first, err := src.table.Manifest(ref.RefID, ref.Token[:], "a")
	if err != nil {
		t.Fatal(err)
	}
	serveAll(t, src.table, ref, "a")
	for range 2000 {
		if _, _, err := src.table.Manifest(ref.RefID, ref.Token[:], "a"); err != nil {
			t.Fatal(err)
		}
	}
	_, nb, _ := src.table.Manifest(ref.RefID, ref.Token[:], "b")
	_, no, _ := src.table.Manifest(oref.RefID, oref.Token[:], "c")
	for _, bad := range []struct{ id, nonce string }{{"a", nb}, {"c", no}, {"b", first}} {
		if err := src.table.Confirm(ref.RefID, ref.Token[:], bad.id, bad.nonce); !errors.Is(err, ErrAuth) {
			t.Errorf("receipt of %s with a nonce not its own: %v, want ErrAuth", bad.id, err)
		}
	}
	if err := src.table.Confirm(ref.RefID, ref.Token[:], "a", first); err != nil {
		t.Fatalf("the first of 2001 nonces: %v", err)
	}
	if err := src.table.Confirm(ref.RefID, ref.Token[:], "a", first); err != nil {
		t.Fatalf("a second receipt with it: %v", err)
	}
}

func lastErr[A, B any](_ A, _ B, err error) error { return err }

// forgedNonce returns a well-formed nonce that differs from n in its salt.
func forgedNonce(n string) string {
	first := "0"
	if n[0] == '0' {
		first = "1"
	}
	return first + n[1:]
}
