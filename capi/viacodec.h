// viacodec.h: the C ABI of viacodec (libviacodec.so). The Go build also
// writes libviacodec.h, with these declarations and the exports' prototypes.
#ifndef VIACODEC_H
#define VIACODEC_H

#include <stddef.h>
#include <stdint.h>

// The C ABI of viacodec (libviacodec.so). Conventions, in short (capi's
// package comment has them in full):
//   - A status is an int32_t core.Kind: 0 OK, 1 invalid, 2 syntax, 3 limit,
//     4 unknown tag, 5 mismatch, 6 unregistered, 7 protocol, 8 unknown ref,
//     9 expired, 10 auth, 11 timeout, 12 aborted, 13 checksum,
//     14 unavailable. vc_kind_name names them. Never renumbered.
//   - Handles are int64_t > 0 from one table; a bad or released handle
//     gives status 1. vc_release releases any handle.
//   - The library never hands out Go memory. Each export says who owns each
//     buffer and which function frees it.
//   - A process must not fork and keep using the library in the child.
//
// Exports and who owns what (capi/exports.go has the full comments):
//   vc_version, vc_kind_name, vc_dtype_name: static strings, never freed.
//   vc_dtype_size(dtype): bytes per element; vc_get_limits(&limits): the
//     core's limits (default and largest max_depth, most dimensions).
//   vc_diagnose(msg, msg_len, width, full, &out, err): the message in CBOR
//     diagnostic notation, as `viacodec inspect` prints it; *out is
//     malloc'd: vc_free it.
//   vc_encode(skel, skel_len, slots, nslots, opts, &handle, &size, err):
//     the message handle views skel and the slots' data: keep them alive
//     and unchanged until vc_release(handle).
//   vc_message_copy(handle, dst, dst_cap, err): writes size bytes into the
//     caller's dst.
//   vc_marshal(skel, skel_len, slots, nslots, opts, &out, &out_len, err):
//     *out is malloc'd: vc_free it.
//   vc_decode(msg, msg_len, opts, &handle, &skel, &skel_len, &slots,
//     &nslots, err): *skel, *slots and their shapes belong to the handle
//     (freed by vc_release); the handle views msg: keep it alive and
//     unchanged until vc_release(handle).
//   vc_decode_fill(handle, dst, n, err): copies slot i into dst[i].data,
//     caller-owned.
//   vc_decode_cancel(handle, err): from another thread, ends the handle's
//     download (vc_decode_fetch fails with status 12).
//   vc_release(handle, err): frees a handle of any kind and what it owns.
//   vc_free(p): frees err->msg, vc_marshal's output, vc_host_source's,
//     vc_host_name's and vc_host_grant_upload's strings, and vc_tx_wait's
//     and vc_tx_status's outcome.
// By reference (a host: a table of published batches, the HTTP server that
// serves them, a client that downloads; capi/host.go):
//   vc_host_new(opts, &host, err): starts a host; vc_release(host) stops it.
//   vc_host_check(opts, err): checks opts as vc_host_new does, without
//     listening: status 0 if a host could start with them.
//   vc_host_encode(host, skel, skel_len, slots, nslots, opts, &msg, &size,
//     &tx, err): encodes by reference and publishes; as vc_encode, and the
//     transaction handle tx (0 when every array went inline) views the
//     slots' data until vc_release(tx), unless opts->snapshot.
//   vc_host_decode(host, ...as vc_decode...): referenced arrays are slots
//     too; vc_decode_fetch(handle, dst, n, timeout_ns, err) copies the
//     inline ones and downloads the others into dst[i].data, caller-owned.
//     Host 0 downloads with the library's own client. Resolving lazy refs
//     is decoding a message that holds them. vc_decode_offload(handle,
//     dir, timeout_ns, &path, offsets, n, err) instead lands every array
//     in one safetensors file it creates in dir: *path is malloc'd
//     (vc_free it), the file is the caller's to remove.
//   vc_relay_new(opts, &relay, err): starts a pull-through caching relay;
//     vc_relay_forward(relay, msg, msg_len, &out, &out_len, err) re-points
//     a message's batches at it (*out malloc'd: vc_free it), and it serves
//     them to any number of receivers, fetching each piece upstream once;
//     vc_relay_source, vc_relay_stats; vc_release(relay) stops it.
//   vc_tx_wait(tx, timeout_ns, &outcome, err), vc_tx_status(tx, &outcome,
//     err): *outcome is malloc'd: vc_free it. vc_tx_abort(tx, err).
//   vc_host_grant_upload(host, max_bytes, timeout_ns, &grant, err): lets a
//     source that cannot be reached upload one batch to this host; *grant
//     (malloc'd: vc_free it) is the text the source passes as
//     vc_publish_options.upload.
//   vc_cancel_new(&cancel, err), vc_cancel(cancel, err): a cancel handle,
//     given as vc_publish_options.cancel; vc_cancel from another thread
//     ends the upload of that vc_host_encode (status 12). vc_release(cancel)
//     cancels too.

#define VC_ABI_VERSION 16

// vc_error receives the error of a failed call. On success msg is NULL and
// offset -1. On failure msg is NUL-terminated UTF-8 text, malloc'd: the
// caller frees it with vc_free; offset is the byte offset in the input the
// error points at, or -1.
typedef struct vc_error {
	char*   msg;
	int64_t offset;
} vc_error;

// vc_slot describes the memory of one array (or byte string) that crosses
// the ABI out of line, as the slot tag 0x56430003(index) of a skeleton
// (docs/wire-format.md §4.1: the value as CBOR that a generic library
// reads and writes, private tags for what it would lose).
//   data    first byte; may be NULL when nbytes is 0
//   nbytes  byte length: dtype size x product(shape)
//   dtype   a core.DType (1 bool, 2-5 int8-int64, 6-9 uint8-uint64,
//           10 float16, 11 bfloat16, 12 float32, 13 float64, 14 complex64,
//           15 complex128, 16 float8_e4m3fn, 17 float8_e5m2; vc_dtype_name),
//           or 0 for a byte string
//   order   0 row-major (C), 1 column-major (Fortran)
//   ndim    number of dimensions, 0 to 64 (0 for a byte string)
//   flags   in a descriptor the library wrote: VC_SLOT_REF when the slot
//           is downloaded (vc_decode_fetch) rather than copied; ignored
//           in a slot the caller passes
//   shape   ndim dimensions
// Elements are little-endian.
typedef struct vc_slot {
	void*          data;
	uint64_t       nbytes;
	int32_t        dtype;
	int32_t        order;
	int32_t        ndim;
	int32_t        flags;
	const int64_t* shape;
} vc_slot;

#define VC_SLOT_REF 1

// vc_enc_options: zero fields mean core's defaults.
typedef struct vc_enc_options {
	int64_t max_depth;        // 1..4096, default 128
} vc_enc_options;

// vc_dec_options: zero fields mean core's defaults (core/options.go).
typedef struct vc_dec_options {
	int64_t max_depth;        // nesting of lists, maps, tags: 1..4096, default 128
	int64_t max_elements;     // items of one list or map: default 2^24
	int64_t max_byte_len;     // one byte or text string: default 4 GiB
	int64_t max_message_size; // the message: default 16 GiB
	int64_t max_array_bytes;  // array bytes of the message: default 64 GiB
	int64_t bytes_slot_min;   // byte strings this long or longer become slots; 0: none
	int64_t pass_through;     // nonzero: references stay in the skeleton as lazy
	                          // refs; nothing is downloaded
	int64_t array_slot_min;   // inline arrays of fewer bytes cross inside the
	                          // skeleton, the others are slots; 0: every array
	                          // is a slot
} vc_dec_options;

// vc_host_options: how vc_host_new starts a host. NULL strings and zero
// numbers mean the defaults.
typedef struct vc_host_options {
	const char* listen;        // address to listen on, host:port: default
	                           // "127.0.0.1:0"; the port may be a range,
	                           // first-last, of which the first free one
	                           // is taken
	const char* name;          // receiver id, 1 to 256 printable ASCII
	                           // characters: default the client
	                           // certificate's CN, else default_name, else
	                           // a random UUID
	const char* advertise;     // base URL receivers download from, with its
	                           // port, or a host name or IP alone, which is
	                           // advertised with the port bound: default
	                           // http(s)://<the listener's address>
	const char* tls_cert_file; // PEM certificate: the server speaks HTTPS,
	                           // and the client presents it when asked
	const char* tls_key_file;  // its PEM private key
	const char* tls_ca_file;   // PEM CA of the peers: verifies their servers
	                           // (default: the system roots)
	int32_t tls_client_auth;   // nonzero: the server demands client
	                           // certificates that tls_ca_file signed
	int32_t allow_cleartext;   // nonzero: without TLS, the server may listen
	                           // on or advertise an address that is not
	                           // loopback (its tokens then cross the
	                           // network in the clear); zero: vc_host_new
	                           // refuses to, with status 1
	int32_t http2;             // nonzero: download over HTTP/2, else HTTP/1.1
	int64_t ref_threshold;     // arrays of this many bytes or more go by
	                           // reference: 1..2^48, default 1 MiB
	int64_t concurrency;       // parallel ranges per batch download: default 4
	int64_t chunk_size;        // bytes per range: default 4 MiB
	const char* default_name;  // the receiver id when name is NULL and no
	                           // client certificate names one
	int32_t no_listen;         // nonzero: listen on nothing (listen and
	                           // advertise NULL), for a host that can only
	                           // dial out: it downloads, and publishes a
	                           // batch only with vc_publish_options.upload
	int64_t request_timeout_ns; // a download request fails when no byte
	                           // of it arrives for this long, connecting
	                           // included: default 30 s
	int64_t retries;           // how often a failed request is tried again:
	                           // 0 the default (4), negative never; a
	                           // download that cannot start fails within
	                           // about (retries+1) * request_timeout_ns
	const char* store;         // an object store, "s3://BUCKET/PREFIX",
	                           // that holds what the host publishes:
	                           // receivers download the arrays from there
	                           // under presigned URLs and ask the host only
	                           // for the manifest and the receipt; the
	                           // objects go when the transaction ends.
	                           // Credentials, region and endpoint come from
	                           // the AWS environment (AWS_ACCESS_KEY_ID,
	                           // AWS_SECRET_ACCESS_KEY, AWS_REGION,
	                           // AWS_ENDPOINT_URL_S3; ~/.aws/credentials).
	                           // NULL: the host serves them itself
	const char* const* trusted_hops; // under mutual TLS (tls_ca_file), the
	                           // certificate names (Subject CN) of the
	                           // relays and holders that may ask and
	                           // confirm for the receivers behind them
	                           // (docs/download-protocol.md §2.1). Each a
	                           // receiver id. NULL: none. Read during the
	                           // call only
	int64_t trusted_hops_len;  // entries of trusted_hops
} vc_host_options;

// vc_relay_options: how vc_relay_new starts a pull-through caching relay.
// NULL strings and zero numbers mean the defaults.
typedef struct vc_relay_options {
	const char* listen;        // as vc_host_options.listen
	const char* advertise;     // as vc_host_options.advertise
	const char* tls_cert_file; // server certificate, and the client
	                           // certificate presented upstream
	const char* tls_key_file;  // its key
	const char* tls_ca_file;   // verifies upstream servers, and with
	                           // tls_client_auth the receivers
	int32_t tls_client_auth;   // nonzero: receivers need certificates
	int32_t allow_cleartext;   // as vc_host_options.allow_cleartext
	int64_t budget;            // bytes of pieces in memory: default 256 MiB
	const char* spill_dir;     // pieces beyond the budget go to files here;
	                           // NULL: they are dropped and fetched again
} vc_relay_options;

// vc_relay_counters: a relay's counters (vc_relay_stats).
typedef struct vc_relay_counters {
	int64_t batches;           // batches held
	int64_t held_bytes;        // bytes of pieces in memory now
	int64_t peak_bytes;        // most bytes of pieces in memory at once
	int64_t upstream_bytes;    // verified bytes fetched upstream
	int64_t upstream_pieces;   // pieces fetched upstream
	int64_t spilled_bytes;     // bytes written to spill files
	int64_t refused;           // requests refused: the budget was in use
	int64_t bytes_served;      // item bytes its server wrote to receivers
} vc_relay_counters;

// vc_publish_options: how vc_host_encode encodes and publishes. Zero
// fields mean the defaults.
typedef struct vc_publish_options {
	int64_t max_depth;         // 1..4096, default 128
	int64_t ref_threshold;     // default the host's
	int64_t receivers;         // confirmations that complete the transaction;
	                           // 0: unknown, the transaction then ends by
	                           // timeout (or abort); with names, at most
	                           // names_len, and 0 means all of them
	int64_t quorum;            // confirmations that make a timed-out transaction
	                           // "quorum met"; 0: none (1 when receivers is 0
	                           // and names is NULL)
	const char* const* names;  // the only receiver ids that may download and
	                           // confirm: any other is refused (HTTP 403; its
	                           // download fails with status 10) and changes
	                           // nothing. Each 1 to 256 printable ASCII
	                           // characters, none repeated, none NULL.
	                           // NULL: any receiver. Read during the call only
	int64_t names_len;         // entries of names: 0 when names is NULL, else
	                           // at least 1
	int64_t max_receivers;     // receivers recorded when names is NULL; one
	                           // more is refused (HTTP 403; its download fails
	                           // with status 3): default the larger of 1024
	                           // and receivers
	int64_t timeout_ns;        // inactivity timeout: default 5 minutes
	int32_t snapshot;          // nonzero: copy the arrays at publish time, so the
	                           // caller may change or free them at once
	int32_t reserved;
	const char* upload;        // a grant (vc_host_grant_upload's text, from
	                           // the holder): the batch is uploaded to the
	                           // grant's holder, which holds its transaction,
	                           // instead of being published here; the slots'
	                           // memory is free when vc_host_encode returns,
	                           // and vc_tx_wait asks the holder for the
	                           // outcome (vc_tx_abort does nothing). NULL:
	                           // publish here. Read during the call only
	int64_t cancel;            // a handle of vc_cancel_new, or 0: vc_cancel
	                           // on it, from another thread, ends the upload
	                           // of this call (to the grant's holder, or to
	                           // the host's store) and the call fails with
	                           // status 12 (aborted)
} vc_publish_options;

// vc_receiver_status: one receiver of a transaction, as the source saw it.
typedef struct vc_receiver_status {
	const char* id;        // its receiver id, NUL-terminated
	int32_t state;         // 0 started, 1 confirmed, 2 failed
	                       // (vc_receiver_state_name)
	int32_t reserved;
	int64_t bytes;         // item bytes served to it
	int64_t first_seen_ns; // Unix time in nanoseconds
	int64_t last_seen_ns;
} vc_receiver_status;

// vc_outcome: a transaction's state and receivers, in one malloc'd block
// (strings and array included) that the caller frees with vc_free.
typedef struct vc_outcome {
	int32_t state;                 // 0 open, 1 completed, 2 quorum met,
	                               // 3 timed out, 4 aborted, 5 deleted
	                               // (vc_tx_state_name)
	int32_t ended;                 // 1 once it has ended and no serve reads
	                               // the caller's memory any more
	int64_t nreceivers;
	vc_receiver_status* receivers; // in the order they first appeared
	const char* ref_id;            // the batch's ref id (a UUID)
} vc_outcome;

// vc_host_counters: a host's counters (vc_host_stats).
typedef struct vc_host_counters {
	int64_t bytes_served;      // item bytes its server wrote to receivers
	int64_t requests;          // requests its server answered
	int64_t open_transactions; // transactions open now
	int64_t receivers_active;  // receivers started and not confirmed, over those
	int64_t conns_open;        // connections open to its server now
} vc_host_counters;

// vc_limits: the core's fixed limits (vc_get_limits).
typedef struct vc_limits {
	int64_t max_depth_default; // max_depth when an option leaves it 0
	int64_t max_depth_limit;   // the largest max_depth
	int64_t max_dims;          // the most dimensions an array may have
} vc_limits;

#endif // VIACODEC_H
