package core

import (
	"fmt"
	"io"
)

// Decode limit defaults and ranges. A zero field in DecOptions means the
// default; a value outside the range is an error from DecMode.
const (
	DefaultMaxDepth       = 128
	DefaultMaxElements    = 1 << 24 // 16 Mi elements per list or map
	DefaultMaxByteLen     = 1 << 32 // 4 GiB per byte or text string
	DefaultMaxMessageSize = 1 << 34 // 16 GiB per message
	DefaultMaxArrayBytes  = 1 << 36 // 64 GiB of array data per message, inline and downloaded

	// MaxDepthLimit is the largest MaxDepth, of decoding and encoding.
	MaxDepthLimit = 4096
	// MaxLengthLimit is the largest value of the other limits and of
	// EncOptions.RefThreshold: 2^48.
	MaxLengthLimit = 1 << 48
)

// UnknownTypes says what Decode does with a typed object whose name is not
// in the registry.
type UnknownTypes uint8

const (
	// UnknownAsObject returns an Object holding the name and the data. Default.
	UnknownAsObject UnknownTypes = iota
	// UnknownAsError fails the decode with KindUnregistered.
	UnknownAsError
)

// DecOptions configures decoding. The zero value is a safe default.
type DecOptions struct {
	// MaxDepth limits the nesting of lists, maps and tags: 1 to 4096,
	// default 128.
	MaxDepth int
	// MaxElements limits the items of one list or the pairs of one map:
	// 1 to 2^48, default 2^24.
	MaxElements int
	// MaxByteLen limits one byte or text string: 1 to 2^48, default 4 GiB.
	MaxByteLen int64
	// MaxMessageSize limits the whole message: 1 to 2^48, default 16 GiB.
	MaxMessageSize int64
	// MaxArrayBytes limits the array bytes of one message, inline and
	// downloaded together: 1 to 2^48, default 64 GiB.
	MaxArrayBytes int64
	// ZeroCopy makes decoded arrays and byte strings alias the input
	// (big-endian arrays are still converted into new memory). The caller
	// must then keep the input alive and unchanged while it uses them.
	// Default: everything is copied.
	ZeroCopy bool
	// UnknownTypes selects what an unregistered typed object decodes to.
	UnknownTypes UnknownTypes
	// PassThrough decodes every ref node to a *LazyRef without downloading
	// anything: the mode of a forwarding hop.
	PassThrough bool
	// Fetcher downloads referenced arrays. Decoding a message that holds
	// references needs one, unless PassThrough is set.
	Fetcher Fetcher
	// Allocator returns the destination buffer of each referenced array;
	// nil means Go memory.
	Allocator Allocator
	// Registry holds the types typed objects may decode to; nil means none.
	Registry *Registry
	// Slots is for the bindings in internal/abi and wasm; Go users leave
	// it unset. It decodes a skeleton instead of a message: the private form in
	// which the bindings pass values across a foreign-function boundary
	// (docs/wire-format.md §4.1). Tag TagSlot becomes a SlotIndex, lazy
	// refs and inline arrays come with their own tags, and a float of any
	// width is a float64. The skeleton's CBOR may nest up to twice as
	// deep as MaxDepth (a Map is a tag around a list); the encode that
	// follows applies MaxDepth to the value. Arrays inside a skeleton are
	// copied even with ZeroCopy, as they may go by reference and outlive
	// it. Without Slots, the skeleton tags are unknown tags.
	Slots bool
}

// DecMode is a validated, immutable set of decode options, safe for
// concurrent use.
type DecMode struct {
	opts       DecOptions
	depthLimit int // of the CBOR nesting: MaxDepth, or twice that for a skeleton
}

// DecMode validates o and returns the mode it describes.
func (o DecOptions) DecMode() (*DecMode, error) {
	var err error
	fill := func(name string, v *int64, def, max int64) {
		switch {
		case err != nil:
		case *v == 0:
			*v = def
		case *v < 1 || *v > max:
			err = errorf(KindInvalid, "DecOptions.%s %d is outside 1..%d", name, *v, max)
		}
	}
	depth, elems := int64(o.MaxDepth), int64(o.MaxElements)
	fill("MaxDepth", &depth, DefaultMaxDepth, MaxDepthLimit)
	fill("MaxElements", &elems, DefaultMaxElements, MaxLengthLimit)
	fill("MaxByteLen", &o.MaxByteLen, DefaultMaxByteLen, MaxLengthLimit)
	fill("MaxMessageSize", &o.MaxMessageSize, DefaultMaxMessageSize, MaxLengthLimit)
	fill("MaxArrayBytes", &o.MaxArrayBytes, DefaultMaxArrayBytes, MaxLengthLimit)
	if o.Slots {
		o.PassThrough = true
	}
	if o.Allocator == nil {
		o.Allocator = goAllocator
	}
	if err != nil {
		return nil, err
	}
	if o.UnknownTypes > UnknownAsError {
		return nil, errorf(KindInvalid, "DecOptions.UnknownTypes %d is not defined", o.UnknownTypes)
	}
	o.MaxDepth, o.MaxElements = int(depth), int(elems)
	limit := o.MaxDepth
	if o.Slots {
		limit = 2*o.MaxDepth + 1
	}
	return &DecMode{opts: o, depthLimit: limit}, nil
}

// Options returns the mode's options with defaults filled in.
func (m *DecMode) Options() DecOptions { return m.opts }

// DefaultRefThreshold is the array size from which encoding by reference
// replaces an array with a ref node.
const DefaultRefThreshold = 1 << 20

// EncOptions configures encoding. The zero value is a safe default: every
// array inline.
type EncOptions struct {
	// MaxDepth limits the nesting of the value, which guards against
	// cycles: 1 to 4096, default 128.
	MaxDepth int
	// Registry holds the types that encode as typed objects; nil means none.
	Registry *Registry
	// ByRef turns every array of RefThreshold bytes or more into a ref node
	// and returns the arrays as a Batch (Message.Batch) to publish.
	ByRef bool
	// RefThreshold is the smallest array, in bytes, sent by reference:
	// 1 to 2^48, default 1 MiB.
	RefThreshold int64
	// Source is the address receivers download this process's batches from
	// (for hostdl, its server's base URL). Required with ByRef.
	Source string
	// Slots is for the bindings in internal/abi and wasm; Go users leave
	// it unset. It writes a binding's skeleton (docs/wire-format.md §4.1) instead
	// of a message: each SlotIndex as tag TagSlot, arrays inline, lazy refs
	// with their batch descriptors. MaxDepth counts as for a message.
	// Without it a SlotIndex is an error. It excludes ByRef.
	Slots bool
	// Rand is the source of ref ids and tokens; default crypto/rand. A
	// host running the core in a sandbox passes its own real randomness.
	Rand io.Reader
}

// EncMode is a validated, immutable set of encode options, safe for
// concurrent use.
type EncMode struct {
	opts EncOptions
}

// EncMode validates o and returns the mode it describes.
func (o EncOptions) EncMode() (*EncMode, error) {
	switch {
	case o.MaxDepth == 0:
		o.MaxDepth = DefaultMaxDepth
	case o.MaxDepth < 1 || o.MaxDepth > MaxDepthLimit:
		return nil, errorf(KindInvalid, "EncOptions.MaxDepth %d is outside 1..%d", o.MaxDepth, MaxDepthLimit)
	}
	switch {
	case o.RefThreshold == 0:
		o.RefThreshold = DefaultRefThreshold
	case o.RefThreshold < 1 || o.RefThreshold > MaxLengthLimit:
		return nil, errorf(KindInvalid, "EncOptions.RefThreshold %d is outside 1..%d", o.RefThreshold, int64(MaxLengthLimit))
	}
	o.Rand = randOrDefault(o.Rand)
	if o.ByRef && o.Source == "" {
		return nil, errorf(KindInvalid, "EncOptions.ByRef needs a Source")
	}
	if o.ByRef && o.Slots {
		return nil, errorf(KindInvalid, "EncOptions.ByRef and Slots exclude each other: a skeleton holds no references of its own")
	}
	return &EncMode{opts: o}, nil
}

// Options returns the mode's options with defaults filled in.
func (m *EncMode) Options() EncOptions { return m.opts }

var (
	defaultEncMode = MustMode(EncOptions{}.EncMode())
	defaultDecMode = MustMode(DecOptions{}.DecMode())
)

// MustMode returns m, and panics if err is not nil. It is for modes made
// from options fixed in the program, as package variables:
//
//	var enc = core.MustMode(core.EncOptions{MaxDepth: 64}.EncMode())
func MustMode[M any](m M, err error) M {
	if err != nil {
		panic(fmt.Sprintf("core: options fixed in the program are invalid: %v", err))
	}
	return m
}

// Marshal encodes v with the default options, arrays inline.
func Marshal(v any) ([]byte, error) { return defaultEncMode.Marshal(v) }

// Unmarshal decodes a message with the default options.
func Unmarshal(data []byte) (any, error) { return defaultDecMode.Decode(data) }
