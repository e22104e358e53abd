package wasm

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
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
	p, err := dec.plan(t.Context(), msg, true)
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

// TestRoundGuestSource: a federated round on loopback whose source runs
// in the guest. The source encodes a model by reference in the guest and
// publishes it in a table that lives in a guest, which its hostdl.Host
// serves; the model is larger than the guest's memory, for its bytes
// stay in the host. A relay in the guest forwards it in pass-through;
// two named receivers, one native and one decoding in the guest, download
// it at once, bit-exact, and the source's transaction completes with
// both named.
func TestRoundGuestSource(t *testing.T) {
	rt := newRuntime(t, Options{MemoryLimit: 16 << 20})
	src, table := guestHost(t, rt, hostdl.HostOptions{})
	receivers := map[string]*hostdl.Host{}
	for _, id := range []string{"agent-native", "agent-guest"} {
		h, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: hostdl.ClientOptions{Receiver: id, ChunkSize: 1 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		receivers[id] = h
	}

	model := map[string]any{}
	var total int64
	for i := range 6 {
		data := make([]byte, 4<<20+i*4096)
		for j := range data {
			data[j] = byte(i*29 + j*13)
		}
		a, _ := core.NewArray(core.DTypeFloat32, []int{len(data) / 4}, core.RowMajor, data)
		model[string(rune('a'+i))] = a
		total += int64(len(data))
	}
	model["bias"] = arrayOf(t, core.DTypeFloat64, core.RowMajor) // small: inline
	enc, err := rt.EncMode(core.EncOptions{ByRef: true, Source: src.Source()})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := enc.Encode(map[string]any{"round": int64(3), "model": model})
	if err != nil {
		t.Fatal(err)
	}
	if total <= rt.MemoryLimit() || msg.Batch().Ref.Bytes != total {
		t.Fatalf("a model of %d bytes (batch %v) in a guest of %d", total, msg.Batch().Ref, rt.MemoryLimit())
	}
	tx, err := table.Publish(msg.Batch(), core.PublishOptions{Names: []string{"agent-native", "agent-guest"}})
	if err != nil {
		t.Fatal(err)
	}

	// The relay, in the guest: pass-through, a field added, encoded again.
	relayDec, _ := rt.DecMode(core.DecOptions{PassThrough: true})
	relayEnc, _ := rt.EncMode(core.EncOptions{})
	v, err := relayDec.Decode(msg.Bytes())
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

	// The receivers, at once: one native, one decoding in the guest.
	nativeDec, err := receivers["agent-native"].DecMode(core.DecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	guestDec, err := rt.DecMode(core.DecOptions{Fetcher: receivers["agent-guest"].Client()})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]any, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, dec := range []Decoder{nativeDec, guestDec} {
		wg.Go(func() { got[i], errs[i] = dec.DecodeContext(t.Context(), forwarded) })
	}
	wg.Wait()
	for i, g := range got {
		if errs[i] != nil {
			t.Fatalf("receiver %d: %v", i, errs[i])
		}
		m := g.(map[string]any)
		if m["round"] != int64(3) || m["relayed-by"] != "relay-1" {
			t.Fatalf("receiver %d: fields %v", i, m)
		}
		gm := m["model"].(map[string]any)
		for k, want := range model {
			a, w := gm[k].(*core.Array), want.(*core.Array)
			if a.DType != w.DType || !slices.Equal(a.Shape, w.Shape) || !bytes.Equal(a.Data, w.Data) {
				t.Fatalf("receiver %d: array %s differs from the source's", i, k)
			}
		}
	}
	out, err := tx.Wait(t.Context())
	confirmed := out.Confirmed()
	slices.Sort(confirmed)
	if err != nil || out.State != core.StateCompleted || !slices.Equal(confirmed, []string{"agent-guest", "agent-native"}) {
		t.Fatalf("transaction %v %v, %v; want completed by both receivers", out.State, out.Confirmed(), err)
	}
	for _, r := range out.Receivers {
		if r.Bytes != total {
			t.Errorf("%s was served %d bytes, want %d", r.ID, r.Bytes, total)
		}
	}
	// Each receiver downloaded the model once, straight from the source.
	if s := src.Stats(); s.BytesServed != 2*total || s.Table.BytesServed != 2*total || s.Table.Open != 0 {
		t.Fatalf("source stats %+v", s)
	}
}
