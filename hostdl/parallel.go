package hostdl

import (
	"context"
	"sync"
	"sync/atomic"
)

// parallel runs do(ctx, i) for i in [0, n) on at most workers goroutines,
// in order of i. The first error cancels ctx for the others and is
// returned; parallel returns only when every worker has. When parent ends
// first and no call failed, it returns ctxError(parent, what).
func parallel(parent context.Context, n, workers int, what string, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				if err := do(ctx, int(i)); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil && parent.Err() != nil {
		return ctxError(parent, what)
	}
	return firstErr
}
