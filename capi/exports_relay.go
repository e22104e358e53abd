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

// vc_relay_new starts a pull-through caching relay (hostdl.Relay) on
// opts->listen: messages re-pointed at it with vc_relay_forward are
// served to any number of receivers, each piece fetched upstream once and
// checked against the origin's checksums; receipts go upstream under each
// receiver's name. opts may be NULL for the defaults. It runs until
// vc_release(relay).
// Ownership: opts and its strings are read during the call only.
//
//export vc_relay_new
func vc_relay_new(opts *C.vc_relay_options, handle *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil {
			return abi.Errorf(core.KindInvalid, "vc_relay_new: handle must not be NULL")
		}
		*handle = 0
		var o abihost.RelayOptions
		if opts != nil {
			o = abihost.RelayOptions{
				Listen: goString(opts.listen), Advertise: goString(opts.advertise),
				TLSCert: goString(opts.tls_cert_file), TLSKey: goString(opts.tls_key_file), TLSCA: goString(opts.tls_ca_file),
				ClientAuth: opts.tls_client_auth != 0, AllowCleartext: opts.allow_cleartext != 0,
				Budget: int64(opts.budget), SpillDir: goString(opts.spill_dir),
			}
		}
		r, err := abihost.NewRelay(o)
		if err != nil {
			return err
		}
		*handle = C.int64_t(handles.Add(r))
		return nil
	})
}

// vc_relay_forward returns msg with every batch re-pointed at the relay,
// which holds them from now on: forward *out instead of msg. Nothing is
// downloaded yet.
// Ownership: msg is read during the call only; *out is malloc'd and the
// caller frees it with vc_free (on failure NULL, *out_len 0).
//
//export vc_relay_forward
func vc_relay_forward(relay C.int64_t, msg *C.uint8_t, msg_len C.uint64_t, out **C.uint8_t, out_len *C.uint64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil || out_len == nil {
			return abi.Errorf(core.KindInvalid, "vc_relay_forward: out and out_len must not be NULL")
		}
		*out, *out_len = nil, 0
		m, err := goBytes(msg, msg_len, "message")
		if err != nil {
			return err
		}
		r, done, err := abi.Use[*abihost.Relay](handles, int64(relay), "a relay handle")
		if err != nil {
			return err
		}
		defer done()
		fwd, err := r.Forward(m)
		if err != nil {
			return err
		}
		p, err := cMalloc(len(fwd))
		if err != nil {
			return err
		}
		copy(unsafe.Slice((*byte)(p), len(fwd)), fwd)
		*out, *out_len = (*C.uint8_t)(p), C.uint64_t(len(fwd))
		return nil
	})
}

// vc_relay_source returns the base URL the relay's receivers reach it at.
// Ownership: *out is malloc'd; the caller frees it with vc_free.
//
//export vc_relay_source
func vc_relay_source(relay C.int64_t, out **C.char, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil {
			return abi.Errorf(core.KindInvalid, "vc_relay_source: out must not be NULL")
		}
		*out = nil
		r, done, err := abi.Use[*abihost.Relay](handles, int64(relay), "a relay handle")
		if err != nil {
			return err
		}
		defer done()
		*out, err = cString(r.Source())
		return err
	})
}

// vc_relay_stats fills *out with the relay's counters.
// Ownership: out is caller-owned and written during the call only.
//
//export vc_relay_stats
func vc_relay_stats(relay C.int64_t, out *C.vc_relay_counters, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil {
			return abi.Errorf(core.KindInvalid, "vc_relay_stats: out must not be NULL")
		}
		r, done, err := abi.Use[*abihost.Relay](handles, int64(relay), "a relay handle")
		if err != nil {
			return err
		}
		defer done()
		st := r.Stats()
		*out = C.vc_relay_counters{
			batches: C.int64_t(st.Batches), held_bytes: C.int64_t(st.HeldBytes), peak_bytes: C.int64_t(st.PeakBytes),
			upstream_bytes: C.int64_t(st.UpstreamBytes), upstream_pieces: C.int64_t(st.UpstreamPieces),
			spilled_bytes: C.int64_t(st.SpilledBytes), refused: C.int64_t(st.Refused), bytes_served: C.int64_t(st.Server.BytesServed),
		}
		return nil
	})
}
