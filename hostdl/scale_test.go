package hostdl

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// TestManyReceivers: 64 receivers download one batch at once, all
// bit-exact, and the transaction (Receivers: 64) completes naming all 64 as
// confirmed. The batch is 256 MiB; 32 MiB under -race or -short, and 64 MiB
// when the machine lacks the memory for 64 copies of 256 MiB.
func TestManyReceivers(t *testing.T) {
	const receivers = 64
	size := 256 << 20
	if raceOrShort() {
		size = 32 << 20
	} else if avail := memAvailable(); avail > 0 && avail < int64(receivers+8)*int64(size) {
		size = 64 << 20
		t.Logf("MemAvailable %d MiB: using a 64 MiB batch", avail>>20)
	}
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(size, 16, 14)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Receivers: receivers})

	var wg sync.WaitGroup
	errs := make([]error, receivers)
	for i := range receivers {
		// A generous request timeout: on a loaded 2-core machine under
		// -race, 256 connections may each wait a long while for a turn.
		c := newTestClient(t, ClientOptions{Receiver: fmt.Sprintf("r%02d", i), RequestTimeout: 2 * time.Minute})
		dm := decoder(t, c)
		wg.Go(func() {
			v, err := dm.Decode(msg)
			if err == nil {
				err = mdl.check(v)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("receiver %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := tx.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	confirmed := out.Confirmed()
	slices.Sort(confirmed)
	if out.State != core.StateCompleted || len(confirmed) != receivers || confirmed[0] != "r00" || confirmed[receivers-1] != "r63" {
		t.Errorf("outcome %v, %d confirmed: %v", out.State, len(confirmed), confirmed)
	}
	if got := table.Stats().BytesServed; got != int64(receivers)*int64(size) {
		t.Errorf("served %d bytes, want %d", got, receivers*size)
	}
}

// TestSlowReceiver: a receiver that reads slowly does not hold up a fast
// one: the fast one completes while the slow one is under half done, even
// with the in-flight budget small.
func TestSlowReceiver(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{MaxInFlightBytes: 8 << 20})
	mdl := newModel(8<<20, 4, 15)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Receivers: 2})

	var slowDone atomic.Int64
	slowStarted := make(chan struct{})
	var once sync.Once
	slow := newTestClient(t, ClientOptions{Receiver: "slow", ChunkSize: 1 << 20, Concurrency: 2,
		Progress: func(_ uuid.UUID, done, _ int64) {
			slowDone.Store(done)
			if done > 0 {
				once.Do(func() { close(slowStarted) })
			}
		}})
	// About 1.6 MB/s per connection, 3.2 MB/s for the two: a first
	// progress report at 2 MiB (25%) after about 0.6s, the next at 50%
	// some 0.6s later.
	throttle := slowDown(slow, 16<<10, 10*time.Millisecond)
	fast := newTestClient(t, ClientOptions{Receiver: "fast", ChunkSize: 1 << 20})

	slowRes := make(chan error, 1)
	go func() {
		v, err := decoder(t, slow).Decode(msg)
		if err == nil {
			err = mdl.check(v)
		}
		slowRes <- err
	}()
	<-slowStarted // the slow receiver has requests in flight
	v, err := decoder(t, fast).Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	atFastEnd := slowDone.Load()
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
	if atFastEnd*2 >= int64(len(mdl.raw)) {
		t.Errorf("the slow receiver was %d of %d bytes done when the fast one finished", atFastEnd, len(mdl.raw))
	}
	throttle.pause.Store(0) // let the slow one finish
	if err := <-slowRes; err != nil {
		t.Fatalf("slow receiver: %v", err)
	}
	out, _ := tx.Wait(context.Background())
	if out.State != core.StateCompleted {
		t.Errorf("state %v", out.State)
	}
}

// TestRounds: 100 rounds of publish, download and confirm in one process
// leave no goroutine, no open transaction and no memory behind.
func TestRounds(t *testing.T) {
	rounds, size := 100, 2<<20
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	c := newTestClient(t, ClientOptions{ChunkSize: 1 << 20})
	dm := decoder(t, c)
	round := func(i int) {
		mdl := newModel(size, 3, uint64(i))
		msg, tx := publish(t, table, srv.Source(), map[string]any{"round": i, "model": mdl.body()}, core.PublishOptions{Receivers: 1})
		v, err := dm.Decode(msg)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := mdl.check(v.(map[string]any)["model"]); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := tx.Wait(ctx); err != nil || out.State != core.StateCompleted {
			t.Fatalf("round %d: %v %v", i, out.State, err)
		}
	}
	round(-1) // warm up: connections, pools
	c.CloseIdleConnections()
	settleGoroutines(t, numGoroutine())
	g0 := numGoroutine()
	heap0 := heapAfterGC()
	for i := range rounds {
		round(i)
	}
	c.Close()
	settleGoroutines(t, g0)
	if st := table.Stats(); st.Open != 0 || st.ReceiversActive != 0 {
		t.Errorf("after %d rounds: %+v", rounds, st)
	}
	if grew := heapAfterGC() - heap0; grew > 8<<20 {
		t.Errorf("heap grew by %d bytes over %d rounds", grew, rounds)
	}
}

func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func memAvailable() int64 {
	return procMeminfo("MemAvailable")
}

// TestRelay: a forwarding hop decodes with PassThrough and re-encodes, with
// a fresh array of its own; the final consumer downloads the original
// arrays straight from the source and the fresh one from the relay. The
// relay never calls the source: the source's only receiver is the agent.
func TestRelay(t *testing.T) {
	srcTable, relayTable := newTable(t), newTable(t)
	src := startServer(t, srcTable, ServerOptions{})
	relaySrv := startServer(t, relayTable, ServerOptions{})
	mdl := newModel(4<<20, 4, 16)
	msg, srcTx := publish(t, srcTable, src.Source(), map[string]any{"round": 7, "model": mdl.body()}, core.PublishOptions{Receivers: 1})

	// The relay: pass-through decode. Its Fetcher is there to catch a
	// download by mistake.
	relayClient := newTestClient(t, ClientOptions{Receiver: "relay"})
	rdm, err := core.DecOptions{PassThrough: true, Fetcher: relayClient}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := rdm.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	inner := fwd.(map[string]any)
	for k, a := range inner["model"].(map[string]any) {
		if _, ok := a.(*core.LazyRef); !ok {
			t.Fatalf("%s: pass-through gave %T", k, a)
		}
	}
	extra := newModel(2<<20, 1, 17)
	relayMsg, relayTx := publish(t, relayTable, relaySrv.Source(),
		map[string]any{"hop": "relay", "inner": inner, "extra": extra.body()}, core.PublishOptions{Receivers: 1})
	if st := src.Stats(); st.BytesServed != 0 || len(st.Requests) != 0 {
		t.Fatalf("the relay talked to the source: %+v", st)
	}

	agent := newTestClient(t, ClientOptions{Receiver: "agent"})
	v, err := decoder(t, agent).Decode(relayMsg)
	if err != nil {
		t.Fatal(err)
	}
	body := v.(map[string]any)
	if err := mdl.check(body["inner"].(map[string]any)["model"]); err != nil {
		t.Fatal(err)
	}
	if err := extra.check(body["extra"]); err != nil {
		t.Fatal(err)
	}
	for name, tx := range map[string]*core.Transaction{"source": srcTx, "relay": relayTx} {
		out, err := tx.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range out.Receivers {
			ids = append(ids, r.ID)
		}
		if out.State != core.StateCompleted || !slices.Equal(ids, []string{"agent"}) {
			t.Errorf("%s: %v, receivers %v; want completed by the agent alone", name, out.State, ids)
		}
	}
	if got := src.Stats().BytesServed; got != int64(len(mdl.raw)) {
		t.Errorf("source served %d bytes, want %d", got, len(mdl.raw))
	}
}

// TestLazyResolve: a LazyRef resolves through the Client.
func TestLazyResolve(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(1<<20, 1, 18)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	pdm, _ := core.DecOptions{PassThrough: true}.DecMode()
	v, err := pdm.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	lazy := v.(map[string]any)["layer.000"].(*core.LazyRef)
	a, err := lazy.Resolve(context.Background(), newTestClient(t, ClientOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := mdl.check(map[string]any{"layer.000": a}); err != nil {
		t.Fatal(err)
	}
}
