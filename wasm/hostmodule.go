package wasm

import (
	"context"
	"crypto/rand"
	"io"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The host module "viacodec" that the guest imports: its randomness, and
// whether to stop. The ref ids, tokens and receipt nonces the guest mints
// are read through viacodec.random from the Rand option of the call in
// progress (a mode's EncOptions.Rand, a table's TableOptions.Rand),
// crypto/rand by default, as a native host's are. A source that fails is
// an error of the call, not the end of the guest (WASI's random_get,
// which the guest's Go runtime uses for itself, would end it). The
// guest's decode asks viacodec.interrupted every few thousand items
// whether the context of the call has ended.

// instanceKey is the context key of the instance a call runs in.
type instanceKey struct{}

// hostInterrupted is viacodec.interrupted() u32: 1 once the context of
// the call in progress has ended, which the guest answers by stopping
// (KindAborted) and the host by failing the call with the context's
// error (instance.call); 0 before. Asking is itself what keeps a long
// guest call from holding up the host: wazero's compiled code has no
// point at which the Go runtime can stop its goroutine, so a garbage
// collection, which stops every goroutine (timers included) first,
// waits until the guest calls the host or returns.
func hostInterrupted(ctx context.Context, stack []uint64) {
	stack[0] = 0
	if ctx.Err() != nil {
		if in, ok := ctx.Value(instanceKey{}).(*instance); ok {
			in.interrupted = true
		}
		stack[0] = 1
	}
}

// randKey is the context key of the call's source of randomness.
type randKey struct{}

// withRand returns ctx carrying r as the source of the guest's randomness
// during calls under it.
func withRand(ctx context.Context, r io.Reader) context.Context {
	return context.WithValue(ctx, randKey{}, r)
}

// hostRandom is viacodec.random(ptr, len u32) u32: it fills the guest's
// buffer from the call's source and returns 0, 1 when the source failed,
// 2 when the buffer is outside the guest's memory.
func hostRandom(ctx context.Context, m api.Module, stack []uint64) {
	buf, ok := m.Memory().Read(uint32(stack[0]), uint32(stack[1]))
	if !ok {
		stack[0] = 2
		return
	}
	r, _ := ctx.Value(randKey{}).(io.Reader)
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		stack[0] = 1
		return
	}
	stack[0] = 0
}

// instantiateHostModule adds the host module to rt.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder("viacodec").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostRandom), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		WithParameterNames("ptr", "len").
		Export("random").
		NewFunctionBuilder().
		WithGoFunction(api.GoFunc(hostInterrupted), nil, []api.ValueType{api.ValueTypeI32}).
		Export("interrupted").
		Instantiate(ctx)
	return err
}
