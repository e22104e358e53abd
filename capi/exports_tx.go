package main

/*
#include "viacodec.h"
*/
import "C"

import (
	"unsafe"

	"github.com/viacodec/viacodec/capi/internal/abihost"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// newOutcome writes out into one malloc'd block.
func newOutcome(out core.Outcome, ended bool, refID string) (*C.vc_outcome, error) {
	head := int(unsafe.Sizeof(C.vc_outcome{}))
	rsize := int(unsafe.Sizeof(C.vc_receiver_status{}))
	size := head + len(out.Receivers)*rsize + len(refID) + 1
	for _, r := range out.Receivers {
		size += len(r.ID) + 1
	}
	p, err := cMalloc(size)
	if err != nil {
		return nil, err
	}
	block := unsafe.Slice((*byte)(p), size)
	strs := head + len(out.Receivers)*rsize
	str := func(s string) *C.char {
		q := &block[strs]
		copy(block[strs:], s)
		block[strs+len(s)] = 0
		strs += len(s) + 1
		return (*C.char)(unsafe.Pointer(q))
	}
	o := (*C.vc_outcome)(p)
	*o = C.vc_outcome{state: C.int32_t(out.State), nreceivers: C.int64_t(len(out.Receivers))}
	if ended {
		o.ended = 1
	}
	if len(out.Receivers) > 0 {
		rs := unsafe.Slice((*C.vc_receiver_status)(unsafe.Add(p, head)), len(out.Receivers))
		for i, r := range out.Receivers {
			rs[i] = C.vc_receiver_status{
				id: str(r.ID), state: C.int32_t(r.State), bytes: C.int64_t(r.Bytes),
				first_seen_ns: C.int64_t(r.FirstSeen.UnixNano()), last_seen_ns: C.int64_t(r.LastSeen.UnixNano()),
			}
		}
		o.receivers = &rs[0]
	}
	o.ref_id = str(refID)
	return o, nil
}

// vc_tx_wait waits until the transaction of handle tx has ended and no
// receiver reads its items any more, for at most timeout_ns (negative: no
// limit; 0: just look), and returns its outcome. Status 11 (timeout) when
// time runs out first, 12 (aborted) when the handle is released meanwhile.
// Threads may wait on one transaction at once.
// Ownership: *outcome is one malloc'd block; the caller frees it with
// vc_free.
//
//export vc_tx_wait
func vc_tx_wait(tx C.int64_t, timeout_ns C.int64_t, outcome **C.vc_outcome, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if outcome == nil {
			return abi.Errorf(core.KindInvalid, "vc_tx_wait: outcome must not be NULL")
		}
		*outcome = nil
		t, done, err := abi.Use[*abihost.Tx](handles, int64(tx), "a transaction handle")
		if err != nil {
			return err
		}
		defer done()
		out, err := t.Wait(int64(timeout_ns))
		if err != nil {
			return err
		}
		*outcome, err = newOutcome(out, true, t.RefID())
		return err
	})
}

// vc_tx_status returns the transaction's state and receivers as they are
// now, without waiting (state 0 while it is open).
// Ownership: *outcome is one malloc'd block; the caller frees it with
// vc_free.
//
//export vc_tx_status
func vc_tx_status(tx C.int64_t, outcome **C.vc_outcome, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if outcome == nil {
			return abi.Errorf(core.KindInvalid, "vc_tx_status: outcome must not be NULL")
		}
		*outcome = nil
		t, done, err := abi.Use[*abihost.Tx](handles, int64(tx), "a transaction handle")
		if err != nil {
			return err
		}
		defer done()
		out, ended := t.Status()
		*outcome, err = newOutcome(out, ended, t.RefID())
		return err
	})
}

// vc_tx_abort ends the transaction with state 4 (aborted) if it is still
// open; receivers then fail. Its memory is still read until the serves in
// progress end: wait (vc_tx_wait) or release the handle before freeing it.
//
//export vc_tx_abort
func vc_tx_abort(tx C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		t, done, err := abi.Use[*abihost.Tx](handles, int64(tx), "a transaction handle")
		if err != nil {
			return err
		}
		defer done()
		t.Abort()
		return nil
	})
}
