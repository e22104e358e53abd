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
//   - Values cross as a skeleton plus slots (docs/wire-format.md §4.1).
//     The skeleton is the value in a form that a generic CBOR library
//     reads and writes without losing anything (core's skeleton mode,
//     core.EncOptions.Slots): no envelope, floats of any width are
//     float64s, float16 and float32 scalars, maps whose keys are not all
//     text, inline arrays and lazy refs (with their batch descriptor)
//     are private tags 0x56430100-0x56430104, a small 0-d array is tag
//     0x56430180+dtype around its element, and each slot is the slot tag
//     0x56430003 around its index. A Slot is the caller's memory for
//     one array or byte string. The caller need not write the skeleton
//     deterministically: Encode decodes it and core writes the message
//     canonically, so no wire-format rule lives in a shell. Decode plans
//     a message (core's decode plan: every limit checked before the
//     caller allocates) and describes each slot (SlotSpec); inline
//     arrays shorter than DecOptions.ArraySlotMin cross inside the
//     skeleton instead, so that many small arrays cost no slot each.
//     Fill copies inline slots into the caller's memory and Fetch also
//     downloads the referenced ones there; Decoded.Cancel ends a
//     download from another thread.
//
// Two neighbours use it, each for one shell: capi/internal/abihost is the C
// ABI's host (a hostdl.Host: the network) and its transactions, and
// wasm/internal/layout holds the byte forms in which plans, parcels,
// errors and table requests cross a wasm guest's memory. This package
// links no network, so the wasm host and guest link none either.
package abi
