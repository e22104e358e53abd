package hostdl_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// A source serves a batch by reference; a receiver decodes the message and
// its Client downloads the array straight from the source.
func Example() {
	quiet := slog.New(slog.DiscardHandler)

	// The source: a table, its server, a message encoded by reference.
	table, _ := core.NewTable(core.TableOptions{})
	defer table.Close()
	srv, err := hostdl.NewServer(table, hostdl.ServerOptions{Logger: quiet})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	w, _ := core.ArrayOf([]int{512, 1024}, make([]float32, 512*1024))
	em, _ := core.EncOptions{ByRef: true, Source: srv.Source()}.EncMode()
	msg, _ := em.Encode(map[string]any{"round": 3, "w": w})
	tx, _ := table.Publish(msg.Batch(), core.PublishOptions{Receivers: 1})

	// The receiver: a Client is the decoder's Fetcher.
	c, _ := hostdl.NewClient(hostdl.ClientOptions{Receiver: "agent", Logger: quiet})
	defer c.Close()
	dm, _ := core.DecOptions{Fetcher: c}.DecMode()
	v, err := dm.Decode(msg.Bytes())
	if err != nil {
		panic(err)
	}
	a := v.(map[string]any)["w"].(*core.Array)
	fmt.Println(a.DType, a.Shape, len(a.Data))

	// The source waits for the receipt.
	out, _ := tx.Wait(context.Background())
	fmt.Println(out.State, out.Confirmed())
	// Output:
	// float32 [512 1024] 2097152
	// completed [agent]
}

// Errors keep the core's kinds across the network: a finished transaction
// is KindExpired on the receiver's side.
func ExampleClient_Fetch() {
	quiet := slog.New(slog.DiscardHandler)
	table, _ := core.NewTable(core.TableOptions{})
	srv, _ := hostdl.NewServer(table, hostdl.ServerOptions{Logger: quiet})
	defer srv.Close()
	w, _ := core.ArrayOf([]int{1 << 18}, make([]float32, 1<<18))
	em, _ := core.EncOptions{ByRef: true, Source: srv.Source()}.EncMode()
	msg, _ := em.Encode(w)
	tx, _ := table.Publish(msg.Batch(), core.PublishOptions{})
	tx.Abort()

	c, _ := hostdl.NewClient(hostdl.ClientOptions{Logger: quiet})
	err := c.Fetch(context.Background(), msg.Batch().Ref, nil)
	fmt.Println(core.KindOf(err))
	// Output: expired
}
