// Package wasm runs viacodec in a sandbox: the codec compiled to a wasm
// module (the guest, wasm/guest, embedded in this package) under wazero,
// in pure Go (no cgo). The guest has no file system, network, environment
// or arguments, and a memory limit; it parses, checks and builds
// messages, and the host, this package, moves the bytes.
//
// A Runtime holds the compiled guest and a pool of instances:
//
//	rt, err := wasm.NewRuntime(wasm.Options{})
//	defer rt.Close()
//	enc, err := rt.EncMode(core.EncOptions{})   // as core.EncOptions{}.EncMode()
//	msg, err := enc.Marshal(v)
//	dec, err := rt.DecMode(core.DecOptions{})   // as core.DecOptions{}.DecMode()
//	v, err := dec.Decode(msg)
//	table, err := rt.NewTable(core.TableOptions{})  // as core.NewTable
//
// EncMode and DecMode mirror core's: the same options, the same bytes,
// errors of the same kinds, and the interfaces Encoder and Decoder, which
// core's modes implement too, so that a Go host switches between native
// and sandboxed by its constructor alone.
//
// # Array bytes
//
// Decoding, the guest returns the message's plan (the plan layout of
// wasm/internal/layout): the skeleton and, for each array, where it
// stands in the message or which batch item to download. The host places
// them through core's placement (core.DecMode.Place): inline arrays from
// its own copy of the message, referenced ones downloaded through
// DecOptions.Fetcher, so that no array byte comes back out of the guest;
// but arrays under 4 KiB, without ZeroCopy, come inside the skeleton,
// which costs less than a slot each. Encoding inline copies the arrays
// into the guest once.
//
// Encoding by reference (EncOptions.ByRef), the arrays of RefThreshold
// bytes or more never enter the guest: it gets their descriptions and
// builds the message and the batch descriptor, and EncMode.Encode returns
// a Message whose Batch's items view the caller's arrays, as core's do.
// The ref id and token come from EncOptions.Rand, through the host.
//
// # Tables
//
// Runtime.NewTable starts a transaction table in a guest instance of its
// own: a Table, with core.Table's API, that hostdl's server serves
// (hostdl.HostOptions.NewTable). The guest checks every request (token,
// named receivers, MaxReceivers, range, nonce) and keeps the books
// (receivers, activity, outcomes); the host keeps the published batches,
// describes them in their manifests and writes the ranges the guest
// grants from its own memory. The table's clock and randomness are the
// host's (TableOptions.Clock, Rand), and its expiry comes from the host's
// sweeps, as for core.Table.
//
// # Failures
//
// A call that the guest answers with an error returns it as core would
// (a *core.Error of the same kind and offset); the instance stays in the
// pool. A call during which the guest fails in any other way closes its
// instance (a fresh one serves the next call) and returns a *core.Error:
//
//	KindTimeout   the context's deadline passed
//	KindAborted   the context was cancelled, or the Runtime closed
//	KindLimit     the guest ran out of memory under Options.MemoryLimit,
//	              or the input cannot fit in it
//	KindInvalid   a trap, a Go panic or fatal error (a deadlock), an exit
//
// How a context's end reaches guest code: the guest's decode, which
// reads and checks the message item by item, asks the host every 4096
// items and every MiB of text whether the call's context has ended
// (viacodec.interrupted), and stops: within milliseconds of guest work,
// whatever the message (the costliest items, references and map keys of
// mixed kinds, take one or two microseconds each in the guest). Asking
// also lets the host's garbage collector in: it stops every goroutine,
// timers included, before it starts, and cannot stop one that runs
// guest code until that code calls the host or returns. A guest's sleep
// ends at once. Other guest calls (encoding, a table's request) run to
// their end, which their input bounds (encoding is linear in the value),
// and the call fails when it returns. Guest code that never returns (a
// bug) is not stopped, and neither is the call's goroutine nor the
// Runtime's Close. Options.StrictInterrupt compiles the guest with
// wazero's checks at every function entry and loop head instead, which
// stop any guest code, an endless loop included, at once, but make
// call-heavy guest code (a message of many references or small arrays)
// 4 to 6 times slower.
//
// # Resources
//
// The guest is compiled once per process (per cache directory), from a
// disk cache when it can (Options.CacheDir: os.UserCacheDir()/viacodec/wazero
// by default). Each instance reserves address space for its memory limit
// once, on Linux, so that growth never copies; its memory is returned when
// the instance closes, and unmapped only when no call runs in it. Idle
// instances stay warm for the next call, up to Options.MaxIdle of them
// holding at most Options.MaxIdleTotal bytes together (128 MiB by
// default: enough to keep an instance that decoded a message of tens of
// MiB); guest memory never shrinks, so an instance that would take them
// past it is closed after its call.
package wasm
