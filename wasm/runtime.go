package wasm

import (
	"context"
	"runtime"
	"sync"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/gate"
	"github.com/viacodec/viacodec/wasm/internal/guestwasm"
)

// Memory limit range and defaults.
const (
	DefaultMemoryLimit  = 64 << 20  // bytes per guest instance
	DefaultMaxIdleTotal = 128 << 20 // bytes all idle instances hold together

	minMemoryLimit = 16 << 20 // the Go runtime of the guest needs a few MiB to start
	maxMemoryLimit = 4 << 30  // wasm32
	pageSize       = 64 << 10
)

// Options configures a Runtime. The zero value is a safe default.
type Options struct {
	// MemoryLimit caps the memory of each guest instance, in bytes: 16 MiB
	// to 4 GiB, rounded up to a whole 64 KiB page; default 64 MiB. An
	// inline message must fit in it with room to spare (encoding holds the
	// value and the message, decoding the message): beyond it a call fails
	// with KindLimit, and the host keeps serving. Address space for the
	// whole limit is reserved per instance, memory is used as the guest
	// grows.
	MemoryLimit int64
	// CacheDir is the directory where compiled guest code is cached
	// across processes: compiling the guest takes seconds, loading it from
	// the cache tens of milliseconds. Default: os.UserCacheDir()/viacodec/wazero
	// (none when the system names no cache directory or it cannot be
	// made). A directory given here that cannot be made is an error.
	CacheDir string
	// NoCache disables the disk cache: every process compiles the guest.
	NoCache bool
	// StrictInterrupt compiles the guest with wazero's checks at every
	// function entry and loop head, so that a context's deadline or
	// cancellation (or Close) stops any guest code at once, a guest that
	// loops forever (a bug) included; call-heavy guest code, such as a
	// message of many references, then takes 4 to 6 times the CPU.
	// Default false: the guest's decode asks the host every 4096 items
	// and every MiB of text it checks whether the call's context has
	// ended, and stops, within milliseconds (the costliest items,
	// references and map keys of mixed kinds, take one or two
	// microseconds each in the guest). Other guest calls (an encode, a
	// table's request) run to their end, which their input bounds:
	// encoding is linear in the value, and a deadline takes effect when
	// the call returns. A guest's sleep and the host's downloads stop at
	// once either way. Guest code that never returns (a bug) is stopped
	// only with StrictInterrupt.
	StrictInterrupt bool
	// MaxIdle is the number of idle instances kept for reuse: 0 means
	// GOMAXPROCS, a negative value none (every call instantiates, which
	// takes milliseconds). At most 1024.
	MaxIdle int
	// MaxIdleMemory is the most memory, in bytes, an instance may hold to
	// be kept idle: guest memory never shrinks, so an instance that grew
	// past it for one large message is closed after its call instead.
	// Default MemoryLimit or MaxIdleTotal, the smaller (the total bounds
	// idle memory); at most MemoryLimit.
	MaxIdleMemory int64
	// MaxIdleTotal is the most memory, in bytes, the idle instances hold
	// together: an instance whose return would take them past it is
	// closed instead. Default 128 MiB, so that a pool stays warm for
	// messages of tens of MiB (an instance that decoded a 16 MiB message
	// holds about 40 MiB) while idle memory stays bounded whatever
	// MaxIdle is; at least MaxIdleMemory. Idle memory is at most
	// MaxIdleTotal.
	MaxIdleTotal int64

	guest []byte // the guest module; default the embedded viacodec.wasm (tests: a debug guest)
}

// Runtime runs the viacodec guest: one compiled module per process (per
// cache directory), and a pool of instances, each serving one call at a
// time. A Runtime is safe for concurrent use; calls run in parallel on
// separate instances. Close it to free its instances.
type Runtime struct {
	eng           *engine
	limit         uint64
	maxIdle       int
	maxIdleMemory uint64
	maxIdleTotal  uint64

	life context.Context // ends when Close starts: in-flight calls stop
	stop context.CancelFunc

	mu         sync.Mutex
	idle       []*instance
	idleMemory uint64              // the memory the idle instances hold
	tables     map[*Table]struct{} // the tables in guests of their own
	closed     bool
	calls      gate.Gate // the calls in flight, which Close waits for
}

// NewRuntime validates o and prepares a Runtime, compiling the guest if
// this process has not yet (from the disk cache when it can). Instances
// are made on demand.
func NewRuntime(o Options) (*Runtime, error) {
	switch {
	case o.MemoryLimit == 0:
		o.MemoryLimit = DefaultMemoryLimit
	case o.MemoryLimit < minMemoryLimit || o.MemoryLimit > maxMemoryLimit:
		return nil, core.NewError(core.KindInvalid, nil, "wasm: Options.MemoryLimit %d is outside %d..%d", o.MemoryLimit, minMemoryLimit, maxMemoryLimit)
	}
	limit := (uint64(o.MemoryLimit) + pageSize - 1) / pageSize * pageSize
	switch {
	case o.MaxIdle == 0:
		o.MaxIdle = runtime.GOMAXPROCS(0)
	case o.MaxIdle < 0:
		o.MaxIdle = 0
	case o.MaxIdle > 1024:
		return nil, core.NewError(core.KindInvalid, nil, "wasm: Options.MaxIdle %d is above 1024", o.MaxIdle)
	}
	switch {
	case o.MaxIdleMemory < 0 || o.MaxIdleMemory > int64(limit):
		return nil, core.NewError(core.KindInvalid, nil, "wasm: Options.MaxIdleMemory %d is outside 0..MemoryLimit", o.MaxIdleMemory)
	case o.MaxIdleTotal < 0 || o.MaxIdleTotal > 0 && o.MaxIdleTotal < o.MaxIdleMemory:
		return nil, core.NewError(core.KindInvalid, nil, "wasm: Options.MaxIdleTotal %d is negative or below MaxIdleMemory %d", o.MaxIdleTotal, o.MaxIdleMemory)
	case o.MaxIdleTotal == 0:
		o.MaxIdleTotal = max(DefaultMaxIdleTotal, o.MaxIdleMemory)
	}
	if o.MaxIdleMemory == 0 {
		o.MaxIdleMemory = min(int64(limit), o.MaxIdleTotal)
	}
	dir := o.CacheDir
	switch {
	case o.NoCache:
		dir = ""
	case dir == "":
		dir = defaultCacheDir()
	}
	guest := o.guest
	if guest == nil {
		guest = guestwasm.Binary()
	}
	eng, err := sharedEngine(guest, dir, o.StrictInterrupt)
	if err != nil {
		return nil, err
	}
	life, stop := context.WithCancel(context.Background())
	return &Runtime{eng: eng, limit: limit, maxIdle: o.MaxIdle, maxIdleMemory: uint64(o.MaxIdleMemory), maxIdleTotal: uint64(o.MaxIdleTotal), life: life, stop: stop}, nil
}

// MemoryLimit returns the memory limit of each instance, in bytes.
func (r *Runtime) MemoryLimit() int64 { return int64(r.limit) }

// Close stops the calls in flight (they fail with KindAborted), waits
// for them to return and closes every instance. Calls after Close fail
// with KindAborted. The compiled guest stays for the process's next
// Runtime.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.calls.Close(nil)
	idle := r.idle
	r.idle, r.idleMemory = nil, 0
	tables := make([]*Table, 0, len(r.tables))
	for t := range r.tables {
		tables = append(tables, t)
	}
	r.mu.Unlock()
	r.stop()
	r.calls.Wait()
	for _, in := range idle {
		in.close()
	}
	for _, t := range tables {
		t.mu.Lock()
		t.loseLocked(core.NewError(core.KindAborted, nil, "wasm: the runtime was closed"))
		t.unlock()
	}
	return nil
}

// enter registers a call that Close must wait for, or fails once the
// Runtime is closed.
func (r *Runtime) enter() error {
	if !r.calls.Enter() {
		return core.NewError(core.KindAborted, nil, "wasm: the runtime is closed")
	}
	return nil
}

// addTable registers t, whose guest Close closes.
func (r *Runtime) addTable(t *Table) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return core.NewError(core.KindAborted, nil, "wasm: the runtime is closed")
	}
	if r.tables == nil {
		r.tables = map[*Table]struct{}{}
	}
	r.tables[t] = struct{}{}
	return nil
}

func (r *Runtime) removeTable(t *Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tables, t)
}

// with runs f on an instance of its own, under ctx and the Runtime's
// life: f gets the context of the call and the caller's own, which tells
// a deadline from the Runtime's Close. A broken instance is closed, a
// sound one goes back to the pool.
func (r *Runtime) with(ctx context.Context, f func(ctx context.Context, in *instance) error) error {
	if err := callerError(ctx, ctx.Err(), "call"); err != nil {
		return err // before any instance is taken: none is broken for it
	}
	if err := r.enter(); err != nil {
		return err
	}
	defer r.calls.Exit()

	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.life, cancel)()

	in, err := r.get(callCtx, ctx, false)
	if err != nil {
		return err
	}
	err = f(callCtx, in)
	if in.oom && in.reused {
		// A warm instance holds the heap its earlier calls left: the
		// call runs again on a fresh one, so that running out of memory
		// (KindLimit) means the call does not fit in MemoryLimit.
		in.close()
		if in, err = r.get(callCtx, ctx, true); err != nil {
			return err
		}
		err = f(callCtx, in)
	}
	r.put(in)
	return err
}

// get takes an idle instance, unless fresh, or makes one.
func (r *Runtime) get(ctx, caller context.Context, fresh bool) (*instance, error) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 && !fresh {
		in := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.idleMemory -= in.idleSize
		r.mu.Unlock()
		in.reused = true
		return in, nil
	}
	r.mu.Unlock()
	in, err := newInstance(ctx, r.eng, r.limit)
	if err != nil && caller.Err() == nil && ctx.Err() != nil {
		return nil, core.NewError(core.KindAborted, err, "wasm: the runtime was closed")
	}
	return in, err
}

// put keeps in for reuse if it is sound and small enough, and the pool
// has room for it (MaxIdle, MaxIdleTotal); it closes it otherwise.
func (r *Runtime) put(in *instance) {
	if size := in.mem.size(); !in.broken && size <= r.maxIdleMemory {
		r.mu.Lock()
		if !r.closed && len(r.idle) < r.maxIdle && r.idleMemory+size <= r.maxIdleTotal {
			in.idleSize = size
			r.idle = append(r.idle, in)
			r.idleMemory += size
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
	in.close()
}

// Version returns the guest's core.Version.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	var v string
	err := r.with(ctx, func(ctx context.Context, in *instance) error {
		res, err := in.call(ctx, "vc_version")
		if err != nil {
			return err
		}
		b, err := in.read(res)
		v = string(b)
		return err
	})
	return v, err
}
