package abi

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/viacodec/viacodec/core"
)

// Error is an error of the export layer itself (a bad handle, a bad slot
// descriptor, an option out of range). Its kind is a core.Kind, so foreign
// callers see one set of status codes.
type Error struct {
	Kind core.Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k.
func Errorf(k core.Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// wrap adds context to err and keeps its kind.
func wrap(err error, format string, args ...any) error {
	return &Error{Kind: KindOf(err), Msg: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the status code of err: core.KindNone (0) for nil.
func KindOf(err error) core.Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return core.KindOf(err)
}

// OffsetOf returns the byte offset in the input that err points at, or -1.
func OffsetOf(err error) int64 {
	if e, ok := errors.AsType[*core.Error](err); ok {
		return e.Offset
	}
	return -1
}

// Text is err's message as a foreign caller reads it: "viacodec: " and
// the message, without the Go package that raised it, which means nothing
// on the other side of the boundary. The kind travels as the status.
func Text(err error) string {
	s := err.Error()
	for _, p := range []string{"core: ", "hostdl: "} {
		s = strings.TrimPrefix(s, p)
	}
	return "viacodec: " + s
}

// PanicError turns a recovered panic into an error with the stack, so a
// bug in the library reaches the caller as a status instead of killing
// the process that loaded it.
func PanicError(p any) error {
	return Errorf(core.KindInvalid, "internal error (panic): %v\n%s", p, debug.Stack())
}
