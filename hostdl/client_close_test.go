package hostdl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// TestClientClose: Close cancels a download in progress (KindAborted,
// ErrClosed), returns once it has, and closes the client's connections;
// later fetches fail with KindInvalid and ErrClosed; closing again is a
// no-op; no goroutine is left.
func TestClientClose(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(8<<20, 2, 21)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	g0 := numGoroutine()

	c, err := NewClient(ClientOptions{Logger: quiet, ChunkSize: 1 << 20, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	slowDown(c, 32<<10, 5*time.Millisecond)
	started := make(chan struct{})
	c.opts.Progress = func(_ uuid.UUID, done, _ int64) {
		if done > 0 {
			select {
			case started <- struct{}{}:
			default:
			}
		}
	}
	res := make(chan error, 1)
	go func() {
		_, err := decoder(t, c).Decode(msg)
		res <- err
	}()
	select {
	case <-started:
	case err := <-res:
		t.Fatalf("the download ended before Close: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no progress within 10s")
	}
	if n := srv.Stats().ConnsOpen; n == 0 {
		t.Fatal("no connection open during the download")
	}
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case err := <-res:
		wantKind(t, err, core.KindAborted)
		if !errors.Is(err, ErrClosed) {
			t.Errorf("error %v is not ErrClosed", err)
		}
	default:
		t.Fatal("Close returned before the download did")
	}

	err = c.Fetch(context.Background(), tx.Ref(), nil)
	wantKind(t, err, core.KindInvalid)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("fetch after Close: %v is not ErrClosed", err)
	}
	c.Close() // again: nothing happens

	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().ConnsOpen != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open 5s after Close", srv.Stats().ConnsOpen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	settleGoroutines(t, g0)
}
