package hostdl_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// A caching relay forwards the server's message re-pointed at itself; the
// agents behind it download the model from the relay, which fetches it
// from the server once. Their receipts reach the server under their own
// names.
func ExampleRelay() {
	quiet := slog.New(slog.DiscardHandler)
	server, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	w, _ := core.ArrayOf([]int{1 << 20}, make([]float32, 1<<20)) // 4 MiB
	enc, _ := server.EncMode(core.EncOptions{})
	msg, err := enc.Encode(map[string]any{"w": w})
	if err != nil {
		panic(err)
	}
	tx, err := server.Publish(msg.Batch(), core.PublishOptions{Receivers: 3})
	if err != nil {
		panic(err)
	}

	relay, err := hostdl.NewRelay(hostdl.RelayOptions{Logger: quiet})
	if err != nil {
		panic(err)
	}
	defer relay.Close()
	held, err := relay.Forward(msg.Bytes()) // send this one on instead of msg
	if err != nil {
		panic(err)
	}
	for _, name := range []string{"agent-1", "agent-2", "agent-3"} {
		c, _ := hostdl.NewClient(hostdl.ClientOptions{Logger: quiet, Receiver: name})
		dec, _ := core.DecOptions{Fetcher: c}.DecMode()
		if _, err := dec.Decode(held); err != nil {
			panic(err)
		}
		c.Close()
	}
	out, _ := tx.Wait(context.Background())
	confirmed := out.Confirmed()
	slices.Sort(confirmed)
	fmt.Println(out.State, confirmed)
	fmt.Printf("the server sent %d MiB, the relay %d MiB\n", server.Stats().BytesServed>>20, relay.Stats().Server.BytesServed>>20)
	// Output:
	// completed [agent-1 agent-2 agent-3]
	// the server sent 4 MiB, the relay 12 MiB
}

// A source that cannot be reached (it only dials out: here a bare
// Client, no server) uploads its update to the server, under a grant the
// server gave it; the server reads the update locally and the source
// learns that it was received.
func ExampleHost_GrantUpload() {
	quiet := slog.New(slog.DiscardHandler)
	server, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: hostdl.ClientOptions{Receiver: "server"}})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	grant, err := server.GrantUpload(hostdl.UploadOptions{MaxBytes: 8 << 20})
	if err != nil {
		panic(err)
	}
	// The grant travels to the source in a message it fetched.

	source, _ := hostdl.NewClient(hostdl.ClientOptions{Logger: quiet})
	defer source.Close()
	u, _ := core.ArrayOf([]int{1 << 20}, make([]float32, 1<<20))
	enc, _ := core.EncOptions{ByRef: true, Source: grant.Holder}.EncMode()
	msg, err := enc.Encode(map[string]any{"update": u})
	if err != nil {
		panic(err)
	}
	up, err := source.Upload(context.Background(), grant, msg.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		panic(err)
	}
	// The source sends msg.Bytes() to the server, which decodes it.
	dec, _ := server.DecMode(core.DecOptions{})
	if _, err := dec.Decode(msg.Bytes()); err != nil {
		panic(err)
	}
	out, err := up.Wait(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(out.State, out.Confirmed(), "network bytes served:", server.Stats().BytesServed)
	// Output:
	// completed [server] network bytes served: 0
}
