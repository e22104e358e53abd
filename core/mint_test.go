package core

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestRandInjected shows that ref ids, tokens and nonces come from the
// source the caller sets: equal seeds mint equal secrets, and two tables
// (and encoders) with their own sources never collide.
func TestRandInjected(t *testing.T) {
	seeded := func(seed uint64) *rand.ChaCha8 {
		var s [32]byte
		s[0] = byte(seed)
		return rand.NewChaCha8(s)
	}
	w := mustArray(t, DTypeUint8, []int{4}, RowMajor, []byte{1, 2, 3, 4})
	encode := func(seed uint64) BatchRef {
		enc, err := EncOptions{ByRef: true, RefThreshold: 1, Source: "http://src", Rand: seeded(seed)}.EncMode()
		if err != nil {
			t.Fatal(err)
		}
		m, err := enc.Encode(w)
		if err != nil {
			t.Fatal(err)
		}
		return m.Batch().Ref
	}
	a, a2, b := encode(1), encode(1), encode(2)
	if a.RefID != a2.RefID || a.Token != a2.Token {
		t.Errorf("one seed minted two batch refs: %s and %s", a.RefID, a2.RefID)
	}
	if a.RefID == b.RefID || a.Token == b.Token {
		t.Errorf("two sources minted the same ref id or token: %s", a.RefID)
	}

	nonces := map[string]bool{}
	for seed := uint64(1); seed <= 2; seed++ {
		table, err := NewTable(TableOptions{Rand: seeded(seed)})
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := EncOptions{ByRef: true, RefThreshold: 1, Source: "http://src", Rand: seeded(seed + 10)}.EncMode()
		m, err := enc.Encode(w)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := table.Publish(m.Batch(), PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		ref := m.Batch().Ref
		for range 100 {
			_, nonce, err := table.Manifest(ref.RefID, ref.Token[:], "r")
			if err != nil {
				t.Fatal(err)
			}
			if nonces[nonce] {
				t.Fatalf("nonce %s minted twice", nonce)
			}
			nonces[nonce] = true
		}
	}
}

// TestRandFailure: a source that fails gives a clear error, not a
// predictable secret.
func TestRandFailure(t *testing.T) {
	empty := bytes.NewReader(nil)
	enc, err := EncOptions{ByRef: true, RefThreshold: 1, Source: "http://src", Rand: empty}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	w := mustArray(t, DTypeUint8, []int{4}, RowMajor, []byte{1, 2, 3, 4})
	if _, err := enc.Encode(w); !errors.Is(err, ErrInvalid) {
		t.Errorf("encode with an empty random source: %v, want KindInvalid", err)
	}
}
