package wasm

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/viacodec/viacodec/core"
)

// engine is a wazero runtime with the guest compiled in it. A process
// compiles the guest once per cache directory (sharedEngine): every
// Runtime with that directory instantiates from the same compiled module.
// Limits are per instance (the memory allocator enforces them), so
// Runtimes of different options share the engine.
type engine struct {
	rt       wazero.Runtime
	cache    wazero.CompilationCache // nil without a disk cache
	compiled wazero.CompiledModule
}

// maxPages is wasm32's largest memory: 4 GiB in 64 KiB pages. Each
// instance's allocator holds it to its runtime's MemoryLimit.
const maxPages = 1 << 16

// exports the host calls, each checked at compile time.
var exports = []string{
	"vc_layout_version", "vc_version", "vc_alloc", "vc_free", "vc_error_text",
	"vc_encode", "vc_decode", "vc_decode_fill", "vc_release", "vc_encode_ref",
	"vc_table_new", "vc_table_publish", "vc_table_manifest", "vc_table_serve", "vc_table_confirm",
	"vc_table_status", "vc_table_abort", "vc_table_delete", "vc_table_sweep", "vc_table_stats", "vc_table_close",
}

// newEngine compiles guest, caching compiled code in cacheDir ("" for no
// disk cache). wazero compiles to machine code where it can (amd64,
// arm64) and interprets elsewhere. With strict, the compiled code checks
// at every call and loop whether its call's context has ended, which
// stops any guest code but costs 4 to 6x on call-heavy guest code such
// as a message of many references; without, the guest's decode asks the
// host (hostInterrupted).
func newEngine(ctx context.Context, guest []byte, cacheDir string, strict bool) (*engine, error) {
	cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(strict).WithMemoryLimitPages(maxPages)
	e := &engine{}
	if cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, core.NewError(core.KindInvalid, err, "wasm: compilation cache %s", cacheDir)
		}
		e.cache = cache
		cfg = cfg.WithCompilationCache(cache)
	}
	e.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		e.close()
		return nil, core.NewError(core.KindInvalid, err, "wasm: WASI")
	}
	if err := instantiateHostModule(ctx, e.rt); err != nil {
		e.close()
		return nil, core.NewError(core.KindInvalid, err, "wasm: the host module")
	}
	var err error
	if e.compiled, err = e.rt.CompileModule(ctx, guest); err != nil {
		e.close()
		return nil, core.NewError(core.KindInvalid, err, "wasm: compile the guest")
	}
	defs := e.compiled.ExportedFunctions()
	for _, name := range append([]string{"_initialize"}, exports...) {
		if _, ok := defs[name]; !ok {
			e.close()
			return nil, core.NewError(core.KindInvalid, nil, "wasm: the guest does not export %s", name)
		}
	}
	return e, nil
}

// close frees the engine's compiled code: for benchmarks and tests, which
// compile on purpose; shared engines live as long as the process.
func (e *engine) close() {
	ctx := context.Background()
	e.rt.Close(ctx)
	if e.cache != nil {
		e.cache.Close(ctx)
	}
}

type engineKey struct {
	guest    [sha256.Size]byte
	cacheDir string
	strict   bool
}

var engines struct {
	mu sync.Mutex
	m  map[engineKey]*sharedEntry
}

type sharedEntry struct {
	once sync.Once
	e    *engine
	err  error
}

// sharedEngine returns the process's engine for guest and cacheDir,
// compiling it on first use.
func sharedEngine(guest []byte, cacheDir string, strict bool) (*engine, error) {
	key := engineKey{sha256.Sum256(guest), cacheDir, strict}
	engines.mu.Lock()
	if engines.m == nil {
		engines.m = map[engineKey]*sharedEntry{}
	}
	s := engines.m[key]
	if s == nil {
		s = &sharedEntry{}
		engines.m[key] = s
	}
	engines.mu.Unlock()
	s.once.Do(func() { s.e, s.err = newEngine(context.Background(), guest, cacheDir, strict) })
	return s.e, s.err
}

// defaultCacheDir is os.UserCacheDir()/viacodec/wazero, or "" (no disk
// cache) where the system names no cache directory or it cannot be made.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir = filepath.Join(dir, "viacodec", "wazero")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}
