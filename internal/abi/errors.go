package abi

import (
	"errors"
	"runtime/debug"
	"strings"

	"github.com/viacodec/viacodec/core"
)

// The export layer's own errors (a bad handle, a bad slot descriptor, an
// option out of range) are *core.Error values too, so that foreign callers
// see one set of status codes and Go callers match them with errors.Is.

// Errorf returns a *core.Error of kind k whose text is the message alone.
func Errorf(k core.Kind, format string, args ...any) error {
	return core.NewError(k, nil, format, args...)
}

// Wrap adds context to err and keeps its kind.
func Wrap(err error, format string, args ...any) error {
	return core.NewError(core.KindOf(err), err, format, args...)
}

// KindOf returns the status code of err: core.KindNone (0) for nil.
func KindOf(err error) core.Kind { return core.KindOf(err) }

// OffsetOf returns the byte offset in the input that err points at, or -1:
// that of the innermost error that has one.
func OffsetOf(err error) int64 {
	off := int64(-1)
	for err != nil {
		if e, ok := err.(*core.Error); ok && e.Offset >= 0 {
			off = e.Offset
		}
		err = errors.Unwrap(err)
	}
	return off
}

// Text is err's message as a foreign caller reads it: "viacodec: " and
// the message, without the names of the Go packages that raised its parts,
// which mean nothing on the other side of the boundary. The kind travels
// as the status.
func Text(err error) string {
	s := err.Error()
	for _, p := range []string{"core: ", "hostdl: ", "s3store: "} {
		s = strings.TrimPrefix(s, p)
		s = strings.ReplaceAll(s, ": "+p, ": ")
	}
	return "viacodec: " + s
}

// PanicError turns a recovered panic into an error with the stack, so a
// bug in the library reaches the caller as a status instead of killing
// the process that loaded it.
func PanicError(p any) error {
	return Errorf(core.KindInvalid, "internal error (panic): %v\n%s", p, debug.Stack())
}
