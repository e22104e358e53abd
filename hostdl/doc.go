// Package hostdl makes references real across processes: a Server serves
// the batches a core.Table published over HTTP, and a Client implements
// core.Fetcher by downloading them, in parallel checksummed ranges, straight
// into the decoder's destination buffers. A Host is both ends of one
// process, assembled once from HostOptions: table, server, client, TLS,
// logging, one clock, one source of randomness and a graceful Close. Use a
// Host unless you need the parts alone.
//
// Across sites, a batch may be held by a Host other than its origin (the
// descriptor's Holder): a Relay forwards messages re-pointed at itself
// and serves their batches to many receivers, fetching each piece
// upstream once (relay.go, relay_table.go); a source that cannot be
// reached uploads its batch to a Host that granted it (Host.GrantUpload,
// Client.Upload: upload.go, upload_client.go). Receipts stay end to end.
//
// Each piece is checksummed once however many receivers ask: a server
// keeps the CRC-32C of every piece it sent (core.PieceSums) and sends a
// known one in one write with its piece; a Host computes them ahead in
// the background after a publish, at the lowest CPU priority; a relay
// and an upload's holder keep those they checked on the way in. Servers
// and clients give a connection whose handshake took at most 200 µs (same
// host, same rack) a 256 KiB send buffer, small enough that the bytes
// copied into the socket are still in cache when the receiver copies them
// out; others keep the system's (sendbuf.go).
//
// The protocol (endpoints, headers, status codes, error bodies, retry rules)
// is specified in docs/download-protocol.md. In short, for a batch with
// ref id R at base URL B, every request carrying the batch's capability
// token as "Authorization: Bearer <hex>", the receiver's id as
// "Viacodec-Receiver" and the protocol's version as "Viacodec-Protocol: 2":
//
//	GET  B/v1/batches/R/manifest     the manifest (CBOR); nonce in "Viacodec-Nonce"
//	GET  B/v1/batches/R/items/I      with "Range: bytes=a-b": 206 and the bytes, each
//	                                 1 MiB piece followed by its CRC-32C
//	POST B/v1/batches/R/receipt      with "Viacodec-Nonce": 204, the receipt
//	GET  B/metrics                   counters (plain text, no token)
//
// A server listens on a port, or the first free port of a range, and
// advertises its own address or a name receivers reach it by, with the
// port it bound (listen.go); options that no server could use are refused
// when they are validated, before anything listens (HostOptions.Check).
//
// Both sides speak HTTP/1.1 and unencrypted HTTP/2 on loopback by default,
// TLS and mutual TLS when configured. Under mutual TLS the receiver id is
// the verified client certificate's Subject CN, unless that names a relay
// the origin trusts (ServerOptions.TrustedHops), which then asks for the
// receivers behind it; without it the id is a claim any token holder can
// make (the threat model is in the document's section 2). Nothing here
// uses cgo.
package hostdl
