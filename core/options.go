package core

import "fmt"

// Decode limit defaults and ranges. A zero field in DecOptions means the
// default; a value outside the range is an error from DecMode.
const (
	DefaultMaxDepth       = 128
	DefaultMaxElements    = 1 << 24 // 16 Mi elements per list or map
	DefaultMaxByteLen     = 1 << 32 // 4 GiB per byte or text string
	DefaultMaxMessageSize = 1 << 34 // 16 GiB per message
	DefaultMaxArrayBytes  = 1 << 36 // 64 GiB of array data per message, inline and downloaded

	maxMaxDepth  = 4096
	maxMaxLength = 1 << 48
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
	// Registry holds the types typed objects may decode to; nil means none.
	Registry *Registry
}

// DecMode is a validated, immutable set of decode options, safe for
// concurrent use.
type DecMode struct {
	opts DecOptions
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
	fill("MaxDepth", &depth, DefaultMaxDepth, maxMaxDepth)
	fill("MaxElements", &elems, DefaultMaxElements, maxMaxLength)
	fill("MaxByteLen", &o.MaxByteLen, DefaultMaxByteLen, maxMaxLength)
	fill("MaxMessageSize", &o.MaxMessageSize, DefaultMaxMessageSize, maxMaxLength)
	fill("MaxArrayBytes", &o.MaxArrayBytes, DefaultMaxArrayBytes, maxMaxLength)
	if err != nil {
		return nil, err
	}
	if o.UnknownTypes > UnknownAsError {
		return nil, errorf(KindInvalid, "DecOptions.UnknownTypes %d is not defined", o.UnknownTypes)
	}
	o.MaxDepth, o.MaxElements = int(depth), int(elems)
	return &DecMode{opts: o}, nil
}

// Options returns the mode's options with defaults filled in.
func (m *DecMode) Options() DecOptions { return m.opts }

// EncOptions configures encoding. The zero value is a safe default.
type EncOptions struct {
	// MaxDepth limits the nesting of the value, which guards against
	// cycles: 1 to 4096, default 128.
	MaxDepth int
	// Registry holds the types that encode as typed objects; nil means none.
	Registry *Registry
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
	case o.MaxDepth < 1 || o.MaxDepth > maxMaxDepth:
		return nil, errorf(KindInvalid, "EncOptions.MaxDepth %d is outside 1..%d", o.MaxDepth, maxMaxDepth)
	}
	return &EncMode{opts: o}, nil
}

// Options returns the mode's options with defaults filled in.
func (m *EncMode) Options() EncOptions { return m.opts }

var (
	defaultEncMode = mustMode(EncOptions{}.EncMode())
	defaultDecMode = mustMode(DecOptions{}.DecMode())
)

func mustMode[M any](m M, err error) M {
	if err != nil {
		panic(fmt.Sprintf("core: default options are invalid: %v", err))
	}
	return m
}

// Marshal encodes v with the default options, arrays inline.
func Marshal(v any) ([]byte, error) { return defaultEncMode.Marshal(v) }

// Unmarshal decodes a message with the default options.
func Unmarshal(data []byte) (any, error) { return defaultDecMode.Decode(data) }
