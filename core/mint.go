package core

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/google/uuid"
)

// The one place that mints the secrets and identifiers of references: ref
// ids and tokens (encoding by reference), and receipt nonces and the
// per-transaction keys they are made with (tables). Each draws from a
// caller-chosen source of randomness, crypto/rand by default, so that a
// host can hand a sandboxed guest its own real randomness.

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

// nonceKeySize is the size of a transaction's receipt key.
const nonceKeySize = 32

// mintNonceKey returns a fresh receipt key for one transaction from r.
func mintNonceKey(r io.Reader) ([]byte, error) {
	k := make([]byte, nonceKeySize)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, errorf(KindInvalid, "nonce key: %v", err)
	}
	return k, nil
}

// Receipt nonces are stateless: a nonce is nonceSaltSize fresh random
// bytes and the first nonceTagSize bytes of HMAC-SHA256 over the
// transaction's key, those bytes and the receiver's id, in hex. The table
// keeps no list of nonces, so no request can push a receiver's nonce out;
// a nonce is good for one receiver of one transaction, and forging one
// means guessing a 128-bit tag.
const (
	nonceSaltSize = 8
	nonceTagSize  = 16
	nonceHexLen   = 2 * (nonceSaltSize + nonceTagSize)
)

// mintNonce returns a fresh receipt nonce for receiver under key, drawing
// its salt from r.
func mintNonce(r io.Reader, key []byte, receiver string) (string, error) {
	var n [nonceSaltSize + nonceTagSize]byte
	if _, err := io.ReadFull(r, n[:nonceSaltSize]); err != nil {
		return "", errorf(KindInvalid, "nonce: %v", err)
	}
	nonceTag(n[nonceSaltSize:], key, n[:nonceSaltSize], receiver)
	return hex.EncodeToString(n[:]), nil
}

// nonceValid reports, in constant time for a well-formed nonce, whether
// nonce is one that mintNonce gave receiver under key.
func nonceValid(key []byte, receiver, nonce string) bool {
	var n, want [nonceSaltSize + nonceTagSize]byte
	if len(nonce) != nonceHexLen {
		return false
	}
	if _, err := hex.Decode(n[:], []byte(nonce)); err != nil {
		return false
	}
	nonceTag(want[nonceSaltSize:], key, n[:nonceSaltSize], receiver)
	return hmac.Equal(n[nonceSaltSize:], want[nonceSaltSize:])
}

// nonceTag writes the tag of salt and receiver under key into dst.
func nonceTag(dst, key, salt []byte, receiver string) {
	m := hmac.New(sha256.New, key)
	m.Write(salt)
	m.Write([]byte(receiver))
	copy(dst, m.Sum(nil))
}
