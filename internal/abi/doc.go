// Package abi is the export layer that the C ABI (capi) and the wasm guest
// share: what a foreign caller sees of viacodec, in pure Go, written once.
// The shells only convert types and own foreign memory.
//
//   - Handles: a Table of objects behind int64 handles, with one lock type,
//     a counting gate per handle (Use, Release). A release cancels the
//     handle's blocking calls, waits for its calls in progress, then closes
//     the object; no call can deadlock against it.
//   - Errors: a status (a core.Kind, KindOf), a text (Text) and a byte
//     offset (OffsetOf) for every error.
//   - Values cross as a skeleton plus slots. The skeleton is a message
//     whose arrays are slot tags (core.TagSlot, docs/wire-format.md §4.1);
//     a Slot is the caller's memory for one array or byte string. Encode
//     reads a caller's skeleton; Decode plans a message (core's decode
//     plan: every limit checked before the caller allocates) and describes
//     each slot (SlotSpec); Fill copies inline slots into the caller's
//     memory and Fetch also downloads the referenced ones there.
//   - Hosts and transactions: Host (a hostdl.Host) encodes by reference
//     and publishes, Tx waits on, reports and aborts a transaction. They
//     are left out of GOOS=wasip1 builds (the wasm guest), which have no
//     network and must not link hostdl.
//   - Layouts (layout.go, layout_table.go): the byte forms of plans,
//     parcels and errors in a wasm guest's memory, of messages encoded by
//     reference from slots the host holds (Slot.Held), of the requests and
//     answers of a table in the guest, and the packing of the guest's
//     results.
package abi
