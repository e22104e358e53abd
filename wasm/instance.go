package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/wasm/internal/layout"
)

// instance is one guest module instance: one caller at a time (a Go
// wasip1 guest is single-threaded), taken from and given back to its
// Runtime's pool. Once a call fails other than with a status, the
// instance is broken and is closed instead of reused: a guest that
// trapped, panicked, ran out of memory or deadlocked may still answer
// calls, wrongly.
type instance struct {
	mod    api.Module
	mem    guestMemory
	limit  uint64 // bytes
	stderr *headBuffer
	fns    map[string]api.Function
	stack  [16]uint64
	broken bool
	oom    bool // it ran out of memory (broken too)
	reused bool // it served an earlier call
	// idleSize is the memory it held when it went idle (Runtime.put).
	idleSize uint64

	// interrupted: the guest asked during the call in progress whether
	// to stop (viacodec.interrupted), and the host said yes.
	interrupted bool

	// callDone is the Done channel of the call in progress, which ends a
	// guest's sleep early.
	callDone atomic.Pointer[<-chan struct{}]
}

// newInstance instantiates e's guest with a memory of at most limit
// bytes, real clocks and randomness, and no files, network, environment
// or arguments, and runs its _initialize.
func newInstance(ctx context.Context, e *engine, limit uint64) (*instance, error) {
	in := &instance{limit: limit, stderr: &headBuffer{max: 4096}, fns: map[string]api.Function{}}
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		in.mem = newGuestMemory(min(max, limit))
		return in.mem
	}))
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(in.sleep).
		WithRandSource(rand.Reader).
		WithStdout(in.stderr).
		WithStderr(in.stderr)
	mod, err := e.rt.InstantiateModule(ctx, e.compiled, cfg)
	if err != nil {
		if mod != nil {
			mod.Close(context.Background())
		}
		return nil, in.failure(ctx, ctx, err, "instantiate the guest")
	}
	in.mod = mod
	for _, name := range exports {
		in.fns[name] = mod.ExportedFunction(name)
	}
	v, err := in.call(ctx, "vc_layout_version")
	if err == nil && int32(v) != layout.LayoutVersion {
		err = core.NewError(core.KindInvalid, nil, "wasm: the guest's layouts are version %d, the host's %d", int32(v), layout.LayoutVersion)
	}
	if err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

// close closes the module; its memory is unmapped once no call is in
// flight.
func (in *instance) close() { in.mod.Close(context.Background()) }

// sleep is the guest's nanosleep: real time, cut short when the call's
// context ends, which ends the call too: the guest's runtime would sleep
// again (and a guest compiled without wazero's checks run on). The panic
// unwinds the guest, as an exit does; the call fails with the context's
// error and its instance is closed.
func (in *instance) sleep(ns int64) {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	var done <-chan struct{}
	if p := in.callDone.Load(); p != nil {
		done = *p
	}
	select {
	case <-t.C:
	case <-done:
		panic(sys.NewExitError(sys.ExitCodeContextCanceled))
	}
}

// call calls the export name with args and returns its one result (0 for
// none). Any error is a failure of the guest (a trap, a panic, an exit, a
// deadline): the instance is then broken. caller is the caller's own
// context, which tells a deadline from the runtime's Close.
func (in *instance) call(ctx context.Context, name string, args ...uint64) (uint64, error) {
	return in.callFrom(ctx, ctx, name, args...)
}

func (in *instance) callFrom(ctx, caller context.Context, name string, args ...uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, in.failure(ctx, caller, err, name)
	}
	if !in.mem.enter() {
		in.broken = true
		return 0, core.NewError(core.KindAborted, nil, "wasm: %s: the instance is closed", name)
	}
	defer in.mem.exit()
	done := ctx.Done()
	in.callDone.Store(&done)
	defer in.callDone.Store(nil)
	in.stderr.reset()
	stack := in.stack[:max(len(args), 1)]
	copy(stack, args)
	err := in.fns[name].CallWithStack(context.WithValue(ctx, instanceKey{}, in), stack)
	if err == nil && in.interrupted {
		err = ctx.Err() // the guest stopped short, told so (hostInterrupted)
	}
	if err != nil {
		return 0, in.failure(ctx, caller, err, name)
	}
	return stack[0], nil
}

// failure breaks the instance and returns err as a *core.Error of the
// kind the caller can act on:
//
//	KindTimeout   the caller's deadline passed during the call
//	KindAborted   the caller's context was cancelled, or the Runtime closed
//	KindLimit     the guest ran out of memory under MemoryLimit: the host
//	              refused it a grow (its runtime dies with texts of its own)
//	KindInvalid   any other trap, Go panic, fatal error (a deadlock) or exit
//
// The guest's own report (its stderr: "panic: ...", "fatal error: ...")
// is part of the message.
func (in *instance) failure(ctx, caller context.Context, err error, what string) error {
	in.broken = true
	var exit *sys.ExitError
	exitCode := uint32(0)
	if errors.As(err, &exit) {
		exitCode = exit.ExitCode()
	}
	report := in.stderr.String()
	if e := callerError(caller, err, what); e != nil {
		return e
	}
	switch {
	case ctx.Err() != nil || exitCode == sys.ExitCodeContextCanceled:
		return core.NewError(core.KindAborted, err, "wasm: %s: the runtime was closed", what)
	case exitCode == sys.ExitCodeDeadlineExceeded:
		return core.NewError(core.KindTimeout, err, "wasm: %s: the deadline passed", what)
	case in.mem != nil && in.mem.refused(), strings.Contains(report, "out of memory"):
		in.oom = true
		return core.NewError(core.KindLimit, err, "wasm: %s: the guest ran out of memory (its limit is %d bytes, Options.MemoryLimit)", what, in.limit)
	case report != "":
		return core.NewError(core.KindInvalid, err, "wasm: %s: the guest failed: %s", what, firstLines(report, 1))
	}
	return core.NewError(core.KindInvalid, err, "wasm: %s: the guest failed", what)
}

// callerError returns the error of a call that caller's deadline or
// cancellation ended (KindTimeout, KindAborted), or nil if caller has not
// ended.
func callerError(caller context.Context, err error, what string) error {
	switch {
	case errors.Is(caller.Err(), context.DeadlineExceeded):
		return core.NewError(core.KindTimeout, err, "wasm: %s: the deadline passed", what)
	case caller.Err() != nil:
		return core.NewError(core.KindAborted, err, "wasm: %s: cancelled", what)
	}
	return nil
}

// firstLines returns the first n non-empty lines of s, joined by "; ".
func firstLines(s string, n int) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" && len(lines) < n {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// lastError returns the guest's error after a call that returned status.
func (in *instance) lastError(ctx context.Context, status core.Kind) error {
	r, err := in.call(ctx, "vc_error_text")
	if err != nil {
		return err
	}
	b, err := in.read(r)
	if err != nil {
		return err
	}
	e := layout.ReadError(b)
	if core.KindOf(e) != status {
		return core.NewError(status, e, "wasm: the guest reported kind %v with an error of kind %v", status, core.KindOf(e))
	}
	return e
}

// result unpacks r, a packed result: the buffer it names, viewed in guest
// memory, or the guest's error.
func (in *instance) result(ctx context.Context, r uint64) (ptr uint32, b []byte, err error) {
	ptr, _, status := layout.UnpackResult(r)
	if status != core.KindNone {
		return 0, nil, in.lastError(ctx, status)
	}
	b, err = in.read(r)
	return ptr, b, err
}

// read views the packed buffer r in guest memory. The view is valid until
// the next call into the guest.
func (in *instance) read(r uint64) ([]byte, error) {
	ptr, n, status := layout.UnpackResult(r)
	if status != core.KindNone {
		return nil, core.NewError(core.KindInvalid, nil, "wasm: the guest returned status %v for a buffer", status)
	}
	b, ok := in.mod.Memory().Read(ptr, n)
	if !ok {
		in.broken = true
		return nil, core.NewError(core.KindInvalid, nil, "wasm: the guest returned a buffer [%#x, +%d) outside its memory", ptr, n)
	}
	return b, nil
}

// alloc returns a pinned guest buffer of n bytes and its view, valid
// until the next call into the guest.
func (in *instance) alloc(ctx context.Context, n uint64) (uint32, []byte, error) {
	if n > in.limit {
		return 0, nil, core.NewError(core.KindLimit, nil, "wasm: %d bytes do not fit in the guest's memory limit of %d bytes (Options.MemoryLimit)", n, in.limit)
	}
	r, err := in.call(ctx, "vc_alloc", n)
	if err != nil {
		return 0, nil, err
	}
	ptr := uint32(r)
	if ptr == 0 {
		return 0, nil, in.lastError(ctx, core.KindInvalid)
	}
	b, err := in.read(layout.PackResult(ptr, uint32(n)))
	return ptr, b, err
}

// exchange is one round trip through the guest: it copies n bytes, which
// put writes, into a fresh guest buffer, calls name with that buffer's
// address followed by args, and hands the buffer the call returns to
// take, which copies what it keeps (the view is valid until the next
// call). Both buffers are freed; the first error is returned.
func (in *instance) exchange(ctx context.Context, n uint64, put func([]byte), name string, args []uint64, take func([]byte) error) error {
	p, buf, err := in.alloc(ctx, n)
	if err != nil {
		return err
	}
	put(buf)
	r, err := in.call(ctx, name, append([]uint64{uint64(p)}, args...)...)
	if err == nil {
		var res uint32
		var b []byte
		if res, b, err = in.result(ctx, r); err == nil {
			err = take(b)
			if ferr := in.free(ctx, res); err == nil {
				err = ferr
			}
		}
	}
	if ferr := in.free(ctx, p); err == nil {
		err = ferr
	}
	return err
}

// free unpins a guest buffer.
func (in *instance) free(ctx context.Context, ptr uint32) error {
	r, err := in.call(ctx, "vc_free", uint64(ptr))
	if err != nil {
		return err
	}
	if status := core.Kind(int32(r)); status != core.KindNone {
		in.broken = true // the host's books and the guest's disagree
		return in.lastError(ctx, status)
	}
	return nil
}

// headBuffer keeps the first max bytes written since reset: the start of
// a guest's report of a panic or fatal error, which names it.
type headBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (h *headBuffer) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.b = h.b[:0]
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.b)
}
