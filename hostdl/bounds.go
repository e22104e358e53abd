package hostdl

import (
	"fmt"
	"time"
)

// fields fills in the defaults of one options struct and checks the
// ranges of its fields, keeping the first error.
type fields struct {
	typ string // "ClientOptions", "ServerOptions"
	err error
}

// bound sets *v to def when it is zero and records an error when it lies
// outside lo..hi.
func bound[T int64 | time.Duration](f *fields, name string, v *T, def, lo, hi T) {
	switch {
	case f.err != nil:
	case *v == 0:
		*v = def
	case *v < lo || *v > hi:
		f.err = fmt.Errorf("hostdl: %s.%s %v is outside %v..%v", f.typ, name, *v, lo, hi)
	}
}
