package main

/*
#include <stdlib.h>
#include "viacodec.h"
*/
import "C"

import (
	"context"
	"os"
	"unsafe"

	"github.com/viacodec/viacodec/capi/internal/abihost"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl/s3store"
	"github.com/viacodec/viacodec/internal/abi"
)

// vc_host_new starts a host: a table for the batches it publishes, an HTTP
// server (hostdl) that serves them on opts->listen, and a client that
// downloads the references it decodes, reporting opts->name as its
// receiver id. opts may be NULL for the defaults. The host runs until
// vc_release(host), which cancels its downloads, ends its open
// transactions (state 5, deleted) and closes its server; its transaction
// handles stay valid until released.
// Ownership: opts and its strings are read during the call only.
//
//export vc_host_new
func vc_host_new(opts *C.vc_host_options, handle *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil {
			return abi.Errorf(core.KindInvalid, "vc_host_new: handle must not be NULL")
		}
		*handle = 0
		o, err := hostOptions(opts)
		if err != nil {
			return err
		}
		h, err := abihost.NewHost(o)
		if err != nil {
			return err
		}
		*handle = C.int64_t(handles.Add(h))
		return nil
	})
}

// vc_host_check checks opts (NULL: the defaults) as vc_host_new does,
// without listening or making anything: status 0 when a host could start
// with them (listening may still fail: a port taken). A shell that starts
// its hosts later refuses bad options at once with it.
// Ownership: opts and its strings are read during the call only.
//
//export vc_host_check
func vc_host_check(opts *C.vc_host_options, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		o, err := hostOptions(opts)
		if err != nil {
			return err
		}
		return abihost.CheckHostOptions(o)
	})
}

// hostOptions copies *opts (NULL: the defaults) into Go memory, and for
// a store the AWS environment (storeEnv).
func hostOptions(opts *C.vc_host_options) (abihost.HostOptions, error) {
	if opts == nil {
		return abihost.HostOptions{}, nil
	}
	hops, err := goStrings(opts.trusted_hops, opts.trusted_hops_len, "trusted_hops")
	if err != nil {
		return abihost.HostOptions{}, err
	}
	if opts.store != nil {
		storeEnv()
	}
	return abihost.HostOptions{
		Listen: goString(opts.listen), Advertise: goString(opts.advertise),
		Name: goString(opts.name), DefaultName: goString(opts.default_name),
		TLSCert: goString(opts.tls_cert_file), TLSKey: goString(opts.tls_key_file), TLSCA: goString(opts.tls_ca_file),
		ClientAuth: opts.tls_client_auth != 0, AllowCleartext: opts.allow_cleartext != 0, HTTP2: opts.http2 != 0,
		RefThreshold: int64(opts.ref_threshold), Concurrency: int64(opts.concurrency), ChunkSize: int64(opts.chunk_size),
		NoListen: opts.no_listen != 0, RequestTimeoutNs: int64(opts.request_timeout_ns), Retries: int64(opts.retries),
		Store: goString(opts.store), TrustedHops: hops,
	}, nil
}

// storeEnv copies the variables a store reads (s3store.EnvNames) from the
// process's C environment into Go's, which is a copy made when the library
// loaded: the embedding process may have set them since (Python's
// os.environ does).
func storeEnv() {
	for _, n := range s3store.EnvNames {
		cn := C.CString(n)
		v := C.getenv(cn)
		C.free(unsafe.Pointer(cn))
		if v == nil {
			os.Unsetenv(n)
		} else {
			os.Setenv(n, C.GoString(v))
		}
	}
}

// publishOptions copies *opts (NULL: the defaults), its names included,
// into Go memory.
func publishOptions(opts *C.vc_publish_options) (abihost.PublishOptions, error) {
	if opts == nil {
		return abihost.PublishOptions{}, nil
	}
	names, err := goStrings(opts.names, opts.names_len, "names")
	if err != nil {
		return abihost.PublishOptions{}, err
	}
	return abihost.PublishOptions{
		MaxDepth: int64(opts.max_depth), RefThreshold: int64(opts.ref_threshold),
		Receivers: int64(opts.receivers), Quorum: int64(opts.quorum),
		Names: names, MaxReceivers: int64(opts.max_receivers),
		TimeoutNs: int64(opts.timeout_ns), Snapshot: opts.snapshot != 0,
		Upload: goString(opts.upload),
	}, nil
}

// vc_host_grant_upload lets one source that cannot be reached upload one
// batch of at most max_bytes to host h within timeout_ns (0: 5 minutes):
// *grant is the text to give the source, which passes it as
// vc_publish_options.upload. Grants count against the host's upload
// budget (1 GiB) until their uploads expire or their transactions end.
// Ownership: *grant is malloc'd; the caller frees it with vc_free.
//
//export vc_host_grant_upload
func vc_host_grant_upload(h C.int64_t, maxBytes C.int64_t, timeoutNs C.int64_t, grant **C.char, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if grant == nil {
			return abi.Errorf(core.KindInvalid, "vc_host_grant_upload: grant must not be NULL")
		}
		*grant = nil
		hs, done, err := abi.Use[*abihost.Host](handles, int64(h), "a host handle")
		if err != nil {
			return err
		}
		defer done()
		g, err := hs.GrantUpload(int64(maxBytes), int64(timeoutNs))
		if err != nil {
			return err
		}
		*grant, err = cString(g)
		return err
	})
}

// hostString returns one of the host's strings as malloc'd C memory.
func hostString(h C.int64_t, out **C.char, what string, get func(*abihost.Host) string) error {
	if out == nil {
		return abi.Errorf(core.KindInvalid, "%s: out must not be NULL", what)
	}
	*out = nil
	hs, done, err := abi.Use[*abihost.Host](handles, int64(h), "a host handle")
	if err != nil {
		return err
	}
	defer done()
	*out, err = cString(get(hs))
	return err
}

// vc_host_source returns the base URL the host's server is reached at (the
// source written into the batches it publishes), e.g.
// "http://127.0.0.1:40123".
// Ownership: *out is malloc'd; the caller frees it with vc_free.
//
//export vc_host_source
func vc_host_source(h C.int64_t, out **C.char, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		return hostString(h, out, "vc_host_source", (*abihost.Host).Source)
	})
}

// vc_host_name returns the host's receiver id (opts->name, or the UUID
// chosen for it).
// Ownership: *out is malloc'd; the caller frees it with vc_free.
//
//export vc_host_name
func vc_host_name(h C.int64_t, out **C.char, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		return hostString(h, out, "vc_host_name", (*abihost.Host).Name)
	})
}

// vc_host_stats fills *out with the host's counters.
// Ownership: out is caller-owned and written during the call only.
//
//export vc_host_stats
func vc_host_stats(h C.int64_t, out *C.vc_host_counters, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if out == nil {
			return abi.Errorf(core.KindInvalid, "vc_host_stats: out must not be NULL")
		}
		hs, done, err := abi.Use[*abihost.Host](handles, int64(h), "a host handle")
		if err != nil {
			return err
		}
		defer done()
		st := hs.Stats()
		var requests int64
		for _, n := range st.Requests {
			requests += n
		}
		*out = C.vc_host_counters{
			bytes_served: C.int64_t(st.BytesServed), requests: C.int64_t(requests),
			open_transactions: C.int64_t(st.Table.Open), receivers_active: C.int64_t(st.Table.ReceiversActive),
			conns_open: C.int64_t(st.ConnsOpen),
		}
		return nil
	})
}

// vc_host_encode encodes a value given as a skeleton and slots, as
// vc_encode does, but by reference: every array of the threshold's size or
// more becomes a ref node, and the batch of those arrays is published on
// the host for receivers to download. The skeleton may hold ref nodes
// (lazy refs a relay forwards); they are written again as they came.
//
//	handle, size  receive the message handle and size, as from vc_encode
//	tx            receives the transaction handle, or 0 when no array went
//	              by reference (there is then nothing to publish)
//
// Ownership: as vc_encode for the message handle. Unless opts->snapshot is
// set, the transaction views the data of the slots that went by reference
// (not the vc_slot array): the caller keeps that memory alive and
// unchanged until it has released tx with vc_release, which first ends
// the transaction (aborted) if it is still open and then waits until no
// receiver reads the memory any more. With opts->snapshot the arrays are
// copied at publish time and only the message handle views them. opts,
// and the strings of opts->names, are read during the call only.
//
//export vc_host_encode
func vc_host_encode(h C.int64_t, skel *C.uint8_t, skel_len C.uint64_t, slots *C.vc_slot, nslots C.int64_t,
	opts *C.vc_publish_options, handle *C.int64_t, size *C.uint64_t, tx *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil || size == nil || tx == nil {
			return abi.Errorf(core.KindInvalid, "vc_host_encode: handle, size and tx must not be NULL")
		}
		*handle, *size, *tx = 0, 0, 0
		sk, err := goBytes(skel, skel_len, "skeleton")
		if err != nil {
			return err
		}
		descs, err := goSlots(slots, nslots)
		if err != nil {
			return err
		}
		o, err := publishOptions(opts)
		if err != nil {
			return err
		}
		hs, done, err := abi.Use[*abihost.Host](handles, int64(h), "a host handle")
		if err != nil {
			return err
		}
		defer done()
		ctx := context.Background()
		if opts != nil && opts.cancel != 0 {
			c, done, err := abi.Use[*cancelHandle](handles, int64(opts.cancel), "a cancel handle (option cancel)")
			if err != nil {
				return err
			}
			ctx = c.ctx
			done()
		}
		m, th, err := hs.Encode(ctx, sk, descs, o)
		if err != nil {
			return err
		}
		*size = C.uint64_t(m.Len())
		*handle = C.int64_t(handles.Add(m))
		if th != nil {
			*tx = C.int64_t(handles.Add(th))
		}
		return nil
	})
}

// vc_host_decode decodes a message as vc_decode does, except that
// referenced arrays (unless opts->pass_through) are slots too, with
// descriptors like the inline ones: vc_decode_fetch then downloads them
// into the caller's memory through host h, or, when h is 0, through the
// library's own client (a random receiver id, no TLS files). With
// opts->pass_through the references stay ref nodes in the skeleton, as
// with vc_decode. To resolve lazy refs, decode a message that holds them.
// Ownership: as vc_decode.
//
//export vc_host_decode
func vc_host_decode(h C.int64_t, msg *C.uint8_t, msg_len C.uint64_t, opts *C.vc_dec_options, handle *C.int64_t,
	skel **C.uint8_t, skel_len *C.uint64_t, slots **C.vc_slot, nslots *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if err := abihost.CheckHost(handles, int64(h)); err != nil {
			return err
		}
		return decodeC(msg, msg_len, opts, true, int64(h), handle, skel, skel_len, slots, nslots)
	})
}

// vc_decode_fetch is vc_decode_fill for a handle from vc_host_decode: it
// copies the inline slots into dst[i].data and downloads the referenced
// ones straight there, all batches in parallel (checksummed, with a
// receipt to each source), through the host the message was decoded with.
// Destinations are checked as vc_decode_fill checks them; a NULL one is
// skipped. timeout_ns bounds the whole call (negative: no limit; 0: fails
// at once if anything is to download). Failure is status 11 on timeout,
// 12 when the host is released meanwhile, 1 when it was released before,
// or the download's kind; the destinations' contents are then undefined.
// When it returns, nothing writes to them any more.
// Ownership: dst and the memory it points to are caller-owned; the memory
// is written during the call only.
//
//export vc_decode_fetch
func vc_decode_fetch(h C.int64_t, dst *C.vc_slot, n C.int64_t, timeout_ns C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		return withDecoded(h, dst, n, func(d *abi.Decoded, dsts []abi.Slot) error {
			return abihost.FetchThrough(handles, d, dsts, int64(timeout_ns))
		})
	})
}

// vc_decode_offload is vc_decode_fetch with destinations the library
// chooses: every array slot of decode handle h (from vc_host_decode)
// lands in one safetensors file that it creates in directory dir (UTF-8),
// each array named by its path in the message. offsets[i] receives slot
// i's byte offset in the file, -1 for a slot not in it (a byte string:
// fill it with vc_decode_fill); n must be the slot count. timeout_ns and
// the failures are those of vc_decode_fetch, and also status 3 for a full
// disk and 1 for a directory that cannot be written; on failure no file
// is left behind.
// Ownership: *path is malloc'd: vc_free it. The file is complete when the
// call returns, and the caller's: the library neither maps nor removes it
// afterwards.
//
//export vc_decode_offload
func vc_decode_offload(h C.int64_t, dir *C.char, timeout_ns C.int64_t, path **C.char, offsets *C.int64_t, n C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		d, done, err := abi.Use[*decodeHandle](handles, int64(h), "a decode handle")
		if err != nil {
			return err
		}
		defer done()
		if int(n) != len(d.d.Specs) || (n > 0 && offsets == nil) || path == nil {
			return abi.Errorf(core.KindInvalid, "vc_decode_offload needs a path pointer and %d offsets, got %d", len(d.d.Specs), n)
		}
		p, offs, err := abihost.Offload(handles, d.d, goString(dir), int64(timeout_ns))
		if err != nil {
			return err
		}
		cp, err := cString(p)
		if err != nil {
			os.Remove(p)
			return err
		}
		copy(unsafe.Slice((*int64)(unsafe.Pointer(offsets)), n), offs)
		*path = cp
		return nil
	})
}

// cancelHandle is a handle of vc_cancel_new: a context that vc_cancel, or
// its release, ends.
type cancelHandle struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// Close ends the context; the handle table calls it on release.
func (c *cancelHandle) Close() { c.cancel() }

// vc_cancel_new makes a cancel handle, to give as vc_publish_options.cancel:
// vc_cancel on it, from another thread, ends the upload of the
// vc_host_encode calls that were given it (status 12). A handle once
// cancelled stays so; vc_release frees it, and cancels it too.
//
//export vc_cancel_new
func vc_cancel_new(handle *C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		if handle == nil {
			return abi.Errorf(core.KindInvalid, "vc_cancel_new: handle must not be NULL")
		}
		ctx, cancel := context.WithCancel(context.Background())
		*handle = C.int64_t(handles.Add(&cancelHandle{ctx, cancel}))
		return nil
	})
}

// vc_cancel cancels the cancel handle h (vc_cancel_new): the uploads of the
// calls given it end. Cancelling twice is harmless.
//
//export vc_cancel
func vc_cancel(h C.int64_t, err *C.vc_error) C.int32_t {
	return call(err, func() error {
		c, done, err := abi.Use[*cancelHandle](handles, int64(h), "a cancel handle")
		if err != nil {
			return err
		}
		defer done()
		c.cancel()
		return nil
	})
}
