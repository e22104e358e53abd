package hostdl

import (
	"bytes"
	"context"
	"github.com/google/uuid"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// TestEndToEnd encodes by reference with the server's Source, publishes,
// and decodes in another DecMode with a Client as its Fetcher: bit-exact,
// with the receipt confirming the transaction.
func TestEndToEnd(t *testing.T) {
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		t.Run([]string{"http1", "http2"}[proto], func(t *testing.T) {
			table := newTable(t)
			srv := startServer(t, table, ServerOptions{})
			mdl := newModel(6<<20+12, 7, 2)
			msg, tx := publish(t, table, srv.Source(), map[string]any{"round": 3, "model": mdl.body()}, core.PublishOptions{Receivers: 1})

			var last [2]int64
			c := newTestClient(t, ClientOptions{Protocol: proto, ChunkSize: 1 << 20, Receiver: "agent",
				Progress: func(_ uuid.UUID, done, total int64) { last = [2]int64{done, total} }})
			v, err := decoder(t, c).Decode(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := mdl.check(v.(map[string]any)["model"]); err != nil {
				t.Fatal(err)
			}
			if last[0] != int64(len(mdl.raw)) || last[1] != int64(len(mdl.raw)) {
				t.Errorf("last progress %d/%d, want %d/%d", last[0], last[1], len(mdl.raw), len(mdl.raw))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := tx.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent"}) {
				t.Errorf("outcome %v confirmed %v", out.State, out.Confirmed())
			}
			st := srv.Stats()
			if st.BytesServed != int64(len(mdl.raw)) {
				t.Errorf("served %d bytes, want %d", st.BytesServed, len(mdl.raw))
			}
			if proto == HTTP2 && st.HTTP2Requests == 0 {
				t.Error("no request came over HTTP/2")
			}
			if proto == HTTP1 && st.HTTP2Requests != 0 {
				t.Error("HTTP/1 client spoke HTTP/2")
			}
		})
	}
}

// TestSameBatchTwice: two fetches of one batch through one Client at the
// same time (two lazy refs of one batch resolved in parallel) both
// succeed, each with its own manifest nonce.
func TestSameBatchTwice(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(4<<20, 2, 22)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	pdm, _ := core.DecOptions{PassThrough: true}.DecMode()
	v, err := pdm.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, ClientOptions{Receiver: "agent", ChunkSize: 1 << 20})
	var wg sync.WaitGroup
	for name, l := range v.(map[string]any) {
		wg.Go(func() {
			a, err := l.(*core.LazyRef).Resolve(context.Background(), c)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			if !bytes.Equal(a.Data, mdl.arrays[name].Data) {
				t.Errorf("%s: bytes differ", name)
			}
		})
	}
	wg.Wait()
	if _, rs := tx.Status(); len(rs) != 1 || rs[0].State != core.ReceiverConfirmed {
		t.Errorf("receivers %+v", rs)
	}
}
