package main

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/viacodec/viacodec/core"
)

// abiError is an error of the C ABI layer itself (a bad handle, a bad slot
// descriptor). Its kind is a core.Kind, so C sees one set of status codes.
type abiError struct {
	kind core.Kind
	msg  string
	err  error
}

func (e *abiError) Error() string {
	if e.err != nil {
		return "capi: " + e.msg + ": " + e.err.Error()
	}
	return "capi: " + e.msg
}

func (e *abiError) Unwrap() error { return e.err }

// errorf returns an abiError of kind k.
func errorf(k core.Kind, format string, args ...any) error {
	return &abiError{kind: k, msg: fmt.Sprintf(format, args...)}
}

// wrap adds context to err and keeps its kind.
func wrap(err error, format string, args ...any) error {
	return &abiError{kind: kindOf(err), msg: fmt.Sprintf(format, args...), err: err}
}

// kindOf returns the status code for err: core.KindNone (0) for nil.
func kindOf(err error) core.Kind {
	if e, ok := errors.AsType[*abiError](err); ok {
		return e.kind
	}
	return core.KindOf(err)
}

// offsetOf returns the byte offset a core error points at, or -1.
func offsetOf(err error) int64 {
	if e, ok := errors.AsType[*core.Error](err); ok {
		return e.Offset
	}
	return -1
}

// panicError turns a recovered panic into an error with the stack, so a
// bug in the library reaches the caller as a status instead of killing
// the process that loaded it.
func panicError(p any) error {
	return errorf(core.KindInvalid, "internal error (panic): %v\n%s", p, debug.Stack())
}
