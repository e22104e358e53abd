package core

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that callers can branch on it. The C ABI
// returns it as the status code and Python maps it to an exception class,
// so its values are stable: never renumber them.
type Kind uint8

// Error kinds. KindNone (0) is never the kind of a non-nil *Error.
const (
	KindNone         Kind = iota
	KindInvalid           // bad argument or unsupported Go value
	KindSyntax            // not well-formed or not valid CBOR; has an offset
	KindLimit             // a decode limit was exceeded
	KindUnknownTag        // a CBOR tag the format does not define
	KindMismatch          // dtype, shape or data length disagree
	KindUnregistered      // typed object whose name is not registered
	KindProtocol          // well-formed CBOR that breaks the viacodec format
	KindUnknownRef        // reference, batch or item nobody knows
	KindExpired           // reference whose transaction has finished
	KindAuth              // missing or wrong capability token
	KindTimeout           // a deadline passed
	KindAborted           // cancelled by the caller or the source
	KindChecksum          // downloaded bytes do not match their checksum
	KindUnavailable       // the source cannot be reached
	kindCount
)

// Sentinel errors, one per kind, for errors.Is.
var (
	ErrInvalid      = errors.New("core: invalid argument")
	ErrSyntax       = errors.New("core: syntax error")
	ErrLimit        = errors.New("core: limit exceeded")
	ErrUnknownTag   = errors.New("core: unknown tag")
	ErrMismatch     = errors.New("core: dtype, shape or length mismatch")
	ErrUnregistered = errors.New("core: unregistered type")
	ErrProtocol     = errors.New("core: protocol error")
	ErrUnknownRef   = errors.New("core: unknown reference")
	ErrExpired      = errors.New("core: expired reference")
	ErrAuth         = errors.New("core: not authorised")
	ErrTimeout      = errors.New("core: timeout")
	ErrAborted      = errors.New("core: aborted")
	ErrChecksum     = errors.New("core: checksum mismatch")
	ErrUnavailable  = errors.New("core: source unavailable")
)

var sentinels = [kindCount]error{
	nil, ErrInvalid, ErrSyntax, ErrLimit, ErrUnknownTag, ErrMismatch, ErrUnregistered,
	ErrProtocol, ErrUnknownRef, ErrExpired, ErrAuth, ErrTimeout, ErrAborted, ErrChecksum,
	ErrUnavailable,
}

var kindNames = [kindCount]string{
	"none", "invalid", "syntax", "limit", "unknown tag", "mismatch", "unregistered",
	"protocol", "unknown ref", "expired", "auth", "timeout", "aborted", "checksum",
	"unavailable",
}

// Valid reports whether k is a defined kind other than KindNone.
func (k Kind) Valid() bool { return k > KindNone && k < kindCount }

// String returns the kind's name.
func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is the error type of the core. errors.Is(err, ErrSyntax) and the
// other sentinels match on Kind; errors.As gives the offset and details.
type Error struct {
	Kind   Kind
	Offset int64 // byte offset in the message, or -1 when it does not apply
	Msg    string
	Err    error // underlying cause, if any

	host bool // made by NewError: Msg carries its own package prefix
}

func (e *Error) Error() string {
	prefix := "core: "
	if e.host {
		prefix = ""
	}
	s := prefix + e.Msg
	if e.Offset >= 0 {
		s = fmt.Sprintf("%s%s at offset %d", prefix, e.Msg, e.Offset)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	return e.Kind < kindCount && target != nil && target == sentinels[e.Kind]
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of the first *Error in err's chain, KindNone for
// nil, and KindInvalid for any other error.
func KindOf(err error) Kind {
	if err == nil {
		return KindNone
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	for k := KindInvalid; k < kindCount; k++ {
		if errors.Is(err, sentinels[k]) {
			return k
		}
	}
	return KindInvalid
}

// NewError returns an *Error of kind k with no offset. Hosts (hostdl, the C
// ABI) use it to report kinds the core defines; the message is used as
// given, so start it with the host's package name ("hostdl: ...").
func NewError(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Offset: -1, Msg: fmt.Sprintf(format, args...), Err: err, host: true}
}

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Offset: -1, Msg: fmt.Sprintf(format, args...)}
}

func errorAt(k Kind, off int, format string, args ...any) *Error {
	return &Error{Kind: k, Offset: int64(off), Msg: fmt.Sprintf(format, args...)}
}
