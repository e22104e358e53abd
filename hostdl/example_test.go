package hostdl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// A source host sends an array by reference; a receiver host decodes the
// message and downloads the array straight from the source; the source's
// transaction completes once the receiver has confirmed. (README.md, "Use
// from Go", shows this code.)
func Example() {
	quiet := slog.New(slog.DiscardHandler)

	// The source serves what it encodes by reference (127.0.0.1, a free port).
	src, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	weights := make([]float32, 512*1024) // 2 MiB: arrays from 1 MiB on go by reference
	for i := range weights {
		weights[i] = float32(i)
	}
	w, err := core.ArrayOf([]int{512, 1024}, weights)
	if err != nil {
		panic(err)
	}
	enc, err := src.EncMode(core.EncOptions{})
	if err != nil {
		panic(err)
	}
	msg, err := enc.Encode(map[string]any{"round": 3, "w": w})
	if err != nil {
		panic(err)
	}
	tx, err := src.Publish(msg.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println("by reference:", len(msg.Batch().Items), "array")
	// Send msg.Bytes() to the receivers. Leave weights unchanged until the
	// transaction has ended.

	// A receiver (commonly another process) decodes with its host's client.
	rcv, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: hostdl.ClientOptions{Receiver: "agent-1"}})
	if err != nil {
		panic(err)
	}
	defer rcv.Close()
	dec, err := rcv.DecMode(core.DecOptions{})
	if err != nil {
		panic(err)
	}
	v, err := dec.Decode(msg.Bytes()) // downloads straight from the source
	if err != nil {
		panic(err)
	}
	got := v.(map[string]any)["w"].(*core.Array)
	fmt.Println(got.DType, got.Shape, bytes.Equal(got.Data, w.Data))

	// The source learns who confirmed.
	out, err := tx.Wait(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(out.State, out.Confirmed())
	// Output:
	// by reference: 1 array
	// float32 [512 1024] true
	// completed [agent-1]
}

// Errors keep the core's kinds across the network: a finished transaction
// is KindExpired on the receiver's side.
func ExampleClient_Fetch() {
	quiet := slog.New(slog.DiscardHandler)
	src, _ := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	defer src.Close()
	w, _ := core.ArrayOf([]int{1 << 18}, make([]float32, 1<<18))
	enc, _ := src.EncMode(core.EncOptions{})
	msg, _ := enc.Encode(w)
	tx, _ := src.Publish(msg.Batch(), core.PublishOptions{})
	tx.Abort()

	c, _ := hostdl.NewClient(hostdl.ClientOptions{Logger: quiet})
	defer c.Close()
	err := c.Fetch(context.Background(), msg.Batch().Ref, nil)
	fmt.Println(core.KindOf(err))
	// Output: expired
}

// Close cancels the downloads in progress and fails later ones; errors.Is
// tells them apart from other failures.
func ExampleHost_Close() {
	h, err := hostdl.NewHost(hostdl.HostOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	h.Close()
	err = h.Client().Fetch(context.Background(), core.BatchRef{Source: "http://127.0.0.1:1"}, nil)
	fmt.Println(core.KindOf(err), errors.Is(err, hostdl.ErrClosed))
	fmt.Println(context.Cause(h.Context()))
	// Output:
	// invalid true
	// hostdl: closed
}
