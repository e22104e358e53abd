package core

import (
	"github.com/viacodec/viacodec/core/internal/cbor"
)

// ReholdMessage is Rehold for a message this process encoded: the
// message it returns has the new holders and keeps msg's batch, for a
// source that publishes the batch elsewhere than at its own host (an
// object store) and sends the message re-pointed there.
func (m *DecMode) ReholdMessage(msg *Message, hold func(BatchRef) (string, error)) (*Message, error) {
	out, err := m.Rehold(msg.Bytes(), hold)
	if err != nil {
		return nil, err
	}
	return &Message{buf: out, size: len(out), batch: msg.batch}, nil
}

// Rehold returns a copy of the message data in which every batch
// descriptor b of the side table has the holder hold(b) returns: what a
// caching relay does to the messages it forwards (docs/wire-format.md
// §3.5). The body is copied byte for byte; the message is first checked
// as Plan checks it, under m's limits, and nothing is downloaded. A
// holder of "" removes the holder. hold returning an error stops Rehold
// with that error.
func (m *DecMode) Rehold(data []byte, hold func(BatchRef) (string, error)) ([]byte, error) {
	if m.opts.Slots {
		return nil, errorf(KindInvalid, "Rehold takes a message, not a skeleton (DecOptions.Slots)")
	}
	p, err := m.planWith(data, false)
	if err != nil {
		return nil, err
	}
	// The message is well-formed and within the limits: find where the
	// body ends and the side table begins.
	r := cbor.Reader{Data: data}
	for range 2 { // the envelope's tag and its list
		if _, err := r.ReadHead(); err != nil {
			return nil, errorAt(KindSyntax, r.Off, "%v", err)
		}
	}
	if _, err := r.ReadHead(); err != nil { // the version
		return nil, errorAt(KindSyntax, r.Off, "%v", err)
	}
	if err := skip(&r); err != nil { // the body
		return nil, err
	}
	out := make([]byte, 0, len(data)+64*len(p.Batches))
	out = append(out, data[:r.Off]...)
	out = cbor.AppendHead(out, cbor.MajorArray, uint64(len(p.Batches)))
	for _, b := range p.Batches {
		h, err := hold(b)
		if err != nil {
			return nil, err
		}
		b.Holder = h
		out = appendBatchRef(out, b)
	}
	return out, nil
}
