// Package core is viacodec's codec: the value model, the CBOR wire format
// (docs/wire-format.md), references to arrays that travel apart from their
// message, and the table of transactions that serves them. It does no
// I/O: it opens no socket or file and starts no goroutine or timer
// (hostdl moves the bytes; time comes in through options and
// Table.Sweep), so it builds for a wasm guest and without cgo.
//
// # Values
//
// A message is a tree of these Go values; Encode accepts them and Decode
// returns them:
//
//	Go value                         CBOR item                        decodes as
//	nil                              null                             nil
//	bool                             false / true                     bool
//	int, int8 … int64,               integer; bignum (tags 2, 3)      int64; uint64 above MaxInt64;
//	uint, uint8 … uint64, *big.Int   beyond 64 bits                   *big.Int beyond 64 bits
//	Float16, float32, float64        float of that width              the same type
//	string                           text string (valid UTF-8)        string
//	[]byte                           byte string                      []byte
//	[]any                            list                             []any
//	map[string]any                   map with text keys               map[string]any
//	Map (or map[any]any)             map with integer, text, bytes,   Map, pairs in message order
//	                                 bool or null keys
//	*Array                           RFC 8746 array (tag 40/1040),    *Array (downloaded, or
//	                                 or a ref node by reference       *LazyRef with PassThrough)
//	Object, a registered type        typed object                     registered type, else Object
//	*LazyRef                         a ref node re-emitted (relays)   *LazyRef or *Array
//	*Extern                          a ref node to bytes held         *Array or *LazyRef
//	                                 elsewhere (by reference only)
//
// Encode also takes the obvious Go types and encodes what they stand for
// (Normalize is the rule, one level deep):
//
//   - a slice of a fixed-width element type ([]float32, []int64, []bool,
//     []complex64, []Float16 …) is a 1-d array that views the slice, with
//     no copy; []int and []uint are int64 and uint64 arrays; []byte stays a
//     byte string. For more dimensions, ArrayOf(shape, elems);
//   - any other slice ([]string, [][]float32, []map[string]any …) is a list;
//   - map[string]T is a map, for any T in the model; a map with integer or
//     bool keys is a map with those keys;
//   - a named type (type Round int, type Weights []float32) encodes as its
//     underlying type, unless it is registered.
//
// Anything else fails with KindInvalid and says what to convert it to: a
// struct (to map[string]any, or register its type: Registry), a pointer
// (the value it points to), a Go array [N]T (a slice), a bfloat16, float8
// or complex scalar (a 0-d Array). A Go value that went in as []float32 or
// map[string]int comes back as *Array or map[string]any: Decode returns
// the model, never the caller's own types (except registered ones).
//
// Arrays have a dtype (DType: numpy's names), a shape of at most MaxDims
// dimensions and an order; Elements views an Array as a typed slice again.
//
// # Options and modes
//
// One way to configure: an options struct validated once into an immutable
// mode, safe for concurrent use (DecOptions.DecMode, EncOptions.EncMode).
// The zero value is the safe default; a value out of its documented range
// is an error of KindInvalid. Marshal and Unmarshal use the default modes;
// MustMode builds a mode from options fixed in the program. Every decode
// limit (MaxDepth, MaxElements, MaxByteLen, MaxMessageSize, MaxArrayBytes)
// is checked against what the message declares before anything is
// allocated.
//
// # Inline and by reference
//
// By default arrays travel inside the message (inline). With
// EncOptions.ByRef, arrays of RefThreshold bytes or more are replaced by
// ref nodes, and the encoder returns them as a Batch (Message.Batch): the
// items view the caller's arrays, nothing is copied. The source publishes
// the batch on its Table; a receiver decodes with a Fetcher (hostdl.Client
// over HTTP, TableFetcher in one process), which downloads each array
// straight into its destination, checks it against the source's
// checksums and confirms receipt. A relay decodes with PassThrough: each
// reference becomes a *LazyRef, which encodes again pointing at the
// original source, so no array byte passes through the relay; DecMode.Resolve
// downloads lazy refs later. An *Extern is an array whose bytes another
// process holds (a binding's, a wasm host's): it encodes by reference only.
//
// # The table
//
// A Table is the source's side of references: Publish opens a Transaction
// per batch, with its expected receivers (PublishOptions.Names or
// Receivers), an inactivity Timeout and an OnDone callback. The table
// grants manifests (Manifest), ranged reads (Serve) and receipts (Confirm)
// to holders of the batch's token; the transaction ends when the expected
// receivers have confirmed, on timeout (Table.Sweep, which the host calls:
// the table has no timer), or by Abort or Delete. Transaction.Wait returns
// its Outcome. hostdl serves a Table over HTTP; wasm runs one in a guest.
//
// # Errors
//
// Every error is an *Error with a Kind (KindSyntax, KindLimit,
// KindMismatch, KindProtocol, KindUnknownRef, KindTimeout …) and, for
// errors in a message, the byte Offset of the offending item. errors.Is
// matches the sentinels (ErrSyntax, ErrLimit …); KindOf gives the kind of
// any error. The C ABI returns the kind as its status code and Python
// raises an exception class per kind, so the kinds never change number.
//
// # Files
//
// For Go users:
//
//	value.go       the scalar types (Float16 …), Map, Object
//	array.go       Array, Order, ArrayOf, Elements, ByteLen, MaxDims
//	dtype.go       DType, the dtypes and their tags
//	gotypes.go     Normalize: the Go types encoded beyond the model
//	options.go     DecOptions, EncOptions, modes, limits, Marshal, Unmarshal
//	encode.go      Encode, Message
//	decode.go      Decode: the one walk of a message (scan, then build),
//	               to Go values or to a binding's skeleton
//	registry.go    Registry, Register: typed objects
//	errors.go      Error, Kind, the sentinels
//	diag.go        Diagnose: a message in CBOR diagnostic notation
//	fetch.go       Fetcher, LazyRef, Resolve, FetchAll
//	batch.go       BatchRef, Batch, Item, Manifest, checksums
//	table.go       Table, Transaction, PublishOptions, Outcome
//	tablefetch.go  TableFetcher: a Fetcher over Tables in one process
//	held.go        Rehold: a relay or holder re-points batch descriptors
//	extern.go      Extern: arrays whose bytes are held elsewhere
//	chunks.go      Manifest.Chunks: the ranges a fetcher asks for
//	mint.go        fresh ref ids and tokens
//	endian.go      refuses to build for a big-endian machine
//	unsafe.go      unsafePointer: a slice's address, for Views
//
// For the bindings in internal/abi and wasm; Go users do not need these:
//
//	plan.go        Plan, Slot, SlotIndex, DecMode.Plan and Place, ReplaceSlots:
//	               Decode in two steps, so that a host chooses where each
//	               array lands (numpy memory, memory outside a wasm guest)
//	skeleton.go    the skeleton a binding passes values in (docs/wire-format.md
//	               §4.1): DecMode.Skeleton and the Slots options
//	views.go       Views: one batch item per view of memory
package core
