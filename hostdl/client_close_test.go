package hostdl

import (
	"context"
	"errors"
	"sync/atomic"
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
	d := newClosing()
	c.opts.Progress = d.progress
	d.run(decoder(t, c), msg)
	d.interrupt(t, func() error {
		if n := srv.Stats().ConnsOpen; n == 0 {
			t.Error("no connection open during the download")
		}
		c.Close()
		return nil
	})

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

// closing is a download that a Close is to interrupt.
type closing struct {
	started chan struct{}
	res     chan error

	closed     atomic.Bool // Close has returned
	lateWrites atomic.Bool // bytes were verified after that
}

func newClosing() *closing {
	return &closing{started: make(chan struct{}, 1), res: make(chan error, 1)}
}

// progress is a ClientOptions.Progress that reports the first verified bytes.
func (c *closing) progress(_ uuid.UUID, done, _ int64) {
	if c.closed.Load() {
		c.lateWrites.Store(true)
	}
	if done > 0 {
		select {
		case c.started <- struct{}{}:
		default:
		}
	}
}

// run decodes msg with dm in a goroutine.
func (c *closing) run(dm *core.DecMode, msg []byte) {
	go func() {
		v, err := dm.Decode(msg)
		if v != nil {
			err = errors.Join(err, errors.New("a value with the error"))
		}
		c.res <- err
	}()
}

// interrupt waits for the download's first verified bytes and calls close,
// which must return within 3s, without error, and only after the fetch
// stopped writing (no bytes verified after it); the decode then fails at
// once with KindAborted and ErrClosed. (Decode itself returns a moment
// after its fetch: Close waits for the fetch, not for its caller.)
func (c *closing) interrupt(t *testing.T, close func() error) {
	t.Helper()
	select {
	case <-c.started:
	case err := <-c.res:
		t.Fatalf("the download ended before Close: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no progress within 10s")
	}
	start := time.Now()
	if err := close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	c.closed.Store(true)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case err := <-c.res:
		wantKind(t, err, core.KindAborted)
		if !errors.Is(err, ErrClosed) {
			t.Errorf("error %v is not ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the download did not end within 2s of Close")
	}
	if c.lateWrites.Load() {
		t.Error("bytes were verified after Close returned")
	}
}
