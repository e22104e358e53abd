// Command guest is viacodec as a wasm module, viacodec.wasm: the export
// layer (internal/abi) behind //go:wasmexport functions, run by the host
// package wasm under wazero. It is built as a reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared ./wasm/guest
//
// (make wasm writes it into wasm/internal/guestwasm, which embeds it). The
// host runs _initialize once, then calls the exports. Like capi, it is a
// shell: it converts integers and guest memory into the export layer's
// types and owns that memory; internal/abi decides.
//
// # Conventions
//
// Every parameter and result is an integer. A buffer is a guest address
// and a length. An export that returns a buffer returns
// layout.PackResult(ptr, len); one that fails returns layout.PackStatus(kind)
// (ptr 0) or, where no buffer comes back, the kind as an int32 status
// (0: success). After a failure, vc_error_text returns the error's layout
// (layout.AppendError: kind, byte offset, text). The layouts are those of
// wasm/internal/layout; vc_layout_version returns layout.LayoutVersion.
//
// Memory: buffers the host fills (vc_alloc) and buffers the guest returns
// are pinned in a table until vc_free: the guest's garbage collector never
// frees one the host holds (and never moves memory). The host frees every
// buffer it got, and may free a returned one as soon as it has read it.
// The error text and the version are the guest's; they are never freed.
//
// No export waits for I/O: the guest has no files, network or
// environment. It imports two functions from the host, besides WASI:
//
//	viacodec.random(ptr, len u32) u32     fills a buffer from the host's
//	                                      randomness for the call in progress
//	                                      (its Rand option); 0, or non-zero
//	                                      when that source failed
//	viacodec.interrupted() u32            non-zero once the call in progress is
//	                                      to stop (its context ended): vc_decode
//	                                      asks every few thousand items and then
//	                                      fails with KindAborted
//
// The ref ids, tokens and receipt nonces the guest mints come from it. An export that panics or runs out of memory ends the
// module (the Go runtime exits); the host then discards the instance.
//
// Exports:
//
//	vc_layout_version() i32
//	vc_version() u64                      core.Version
//	vc_alloc(n u32) u32                   a pinned buffer of n bytes (undefined); 0 on failure
//	vc_free(ptr u32) i32                  unpins a buffer of vc_alloc or a result
//	vc_error_text() u64                   the last failure's error layout
//	vc_encode(parcel, len u32, max_depth i64) u64
//	                                      the message of a parcel (skeleton and slots)
//	vc_decode(msg, len u32, max_depth, max_elements, max_byte_len,
//	          max_message_size, max_array_bytes, bytes_slot_min,
//	          array_slot_min i64, flags u32) u64
//	                                      the plan layout of a message
//	vc_decode_fill(handle i64, parcel, len u32) i32
//	                                      copies a kept decode's slots into a parcel's slots
//	vc_release(handle i64) i32            releases a decode or table handle
//	vc_encode_ref(buf, parcel_len, source_len u32, max_depth, ref_threshold i64) u64
//	                                      the encoded layout of a parcel whose held
//	                                      slots go by reference from the source,
//	                                      which follows the parcel in buf
//
// The transaction table (table.go) keeps the books of batches whose bytes
// the host holds. Each export returns the table answer layout, in a
// buffer of the guest's that stays valid until the next table call and
// is never freed, or a failure; now is the host's clock, in Unix ns.
// Requests are table request layouts (publish: a publish layout):
//
//	vc_table_new(keep_finished_ns, max_finished i64) u64
//	                                                values[0]: the table's handle
//	vc_table_publish(h i64, req, len u32, now i64) u64
//	vc_table_manifest(h i64, req, len u32, now i64) u64   text: the nonce
//	vc_table_serve(h i64, req, len u32, now i64) u64
//	vc_table_confirm(h i64, req, len u32, now i64) u64
//	vc_table_status(h i64, req, len u32, now i64) u64     the status
//	vc_table_abort(h i64, req, len u32, now i64) u64
//	vc_table_delete(h i64, req, len u32, now i64) u64
//	vc_table_sweep(h, now, at i64) u64              values[0]: how many ended
//	vc_table_stats(h, now i64) u64                  values: core.Stats
//	vc_table_close(h, now i64) u64
//
// Every answer lists the transactions ended since the last answer, with
// their outcomes, so that the host can complete them.
//
// vc_decode's flags: DecodePassThrough, DecodeCanFetch, DecodeKeep (keep a
// handle for vc_decode_fill; the message buffer must then stay unchanged
// until vc_release), DecodeRefuseUnknown (refuse typed objects while
// planning).
package main

func main() {}
