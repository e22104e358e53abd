package wasm

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// TestRoundThroughHostdl: a federated round on loopback in which the
// relay and the receiver run the codec in the guest. A native source
// publishes a model by reference; the relay decodes it in pass-through,
// adds a field and encodes it again, holding no array byte; the receiver
// decodes it, its host downloading straight from the source into its own
// memory; the bytes are bit-exact and the source's transaction completes
// with the receiver's confirmation.
func TestRoundThroughHostdl(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	src, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rcv, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: hostdl.ClientOptions{Receiver: "agent-1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	rt := newRuntime(t, Options{MemoryLimit: 16 << 20})

	model := map[string]any{}
	for i := range 6 {
		data := make([]byte, 1<<20+i*4096)
		for j := range data {
			data[j] = byte(i*13 + j*7)
		}
		a, _ := core.NewArray(core.DTypeFloat32, []int{len(data) / 4}, core.RowMajor, data)
		model[string(rune('a'+i))] = a
	}
	model["bias"] = arrayOf(t, core.DTypeFloat64, core.RowMajor) // small: inline
	enc, _ := src.EncMode(core.EncOptions{})
	m, err := enc.Encode(map[string]any{"round": int64(3), "model": model})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := src.Publish(m.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	msg := m.Bytes()

	// The relay, in the guest: pass-through, a field added, encoded again.
	relayDec, _ := rt.DecMode(core.DecOptions{PassThrough: true})
	relayEnc, _ := rt.EncMode(core.EncOptions{})
	v, err := relayDec.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	v.(map[string]any)["relayed-by"] = "relay-1"
	forwarded, err := relayEnc.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(forwarded) > 4096 {
		t.Fatalf("the relay's message is %d bytes: it carries array bytes", len(forwarded))
	}

	// The receiver, in the guest, its host downloading.
	dec, err := rt.DecMode(core.DecOptions{Fetcher: rcv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec.DecodeContext(t.Context(), forwarded)
	if err != nil {
		t.Fatal(err)
	}
	g := got.(map[string]any)
	if g["round"] != int64(3) || g["relayed-by"] != "relay-1" {
		t.Fatalf("fields: %v", g)
	}
	gm := g["model"].(map[string]any)
	for k, want := range model {
		a := gm[k].(*core.Array)
		w := want.(*core.Array)
		if a.DType != w.DType || !slices.Equal(a.Shape, w.Shape) || !bytes.Equal(a.Data, w.Data) {
			t.Fatalf("array %s differs from the source's", k)
		}
	}
	out, err := tx.Wait(context.Background())
	if err != nil || out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent-1"}) {
		t.Fatalf("transaction %v %v, %v; want completed by agent-1", out.State, out.Confirmed(), err)
	}
}

// TestPlanBeyondGuestMemory: a by-reference model of 5 GiB, more than a
// wasm32 guest can address, plans in a guest capped at 16 MiB: the guest
// sees descriptors, never array bytes.
func TestPlanBeyondGuestMemory(t *testing.T) {
	rt := newRuntime(t, Options{MemoryLimit: 16 << 20})
	batch := core.BatchRef{Source: "http://127.0.0.1:1", Items: 5, Bytes: 5 << 30}
	model := map[string]any{}
	for i := range 5 {
		model[string(rune('a'+i))] = &core.LazyRef{Batch: batch, Item: i, DType: core.DTypeFloat32, Shape: []int{1 << 28}}
	}
	msg, err := core.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := rt.DecMode(core.DecOptions{Fetcher: rcvNone{}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dec.plan(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range p.Slots {
		total += s.Bytes
	}
	if len(p.Slots) != 5 || total != 5<<30 || len(p.Batches) != 1 || p.Batches[0].Bytes != 5<<30 {
		t.Fatalf("plan of %d slots, %d bytes, %d batches", len(p.Slots), total, len(p.Batches))
	}
}

// rcvNone is a Fetcher for plans that are never fetched.
type rcvNone struct{}

func (rcvNone) Fetch(context.Context, core.BatchRef, []core.FetchItem) error {
	return core.NewError(core.KindUnavailable, nil, "no fetch")
}
