package core

import (
	"crypto/rand"
	"encoding/hex"
	"io"

	"github.com/google/uuid"
)

// The one place that mints the secrets and identifiers of references: ref
// ids and tokens (encoding by reference) and manifest nonces (tables). Each
// draws from a caller-chosen source of randomness, crypto/rand by default,
// so that a host can hand a sandboxed guest its own real randomness.

// randOrDefault returns r, or crypto/rand's reader when r is nil.
func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// mintBatchRef returns a descriptor for source with a fresh UUID v4 ref id
// and a fresh token from r.
func mintBatchRef(r io.Reader, source string) (BatchRef, error) {
	id, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return BatchRef{}, errorf(KindInvalid, "ref id: %v", err)
	}
	b := BatchRef{Source: source, RefID: id}
	if _, err := io.ReadFull(r, b.Token[:]); err != nil {
		return BatchRef{}, errorf(KindInvalid, "token: %v", err)
	}
	return b, nil
}

// mintNonce returns a fresh manifest nonce from r: 16 random bytes in hex.
func mintNonce(r io.Reader) (string, error) {
	var n [16]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", errorf(KindInvalid, "nonce: %v", err)
	}
	return hex.EncodeToString(n[:]), nil
}
