package wasm_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/wasm"
)

// A host encodes and decodes in the sandbox with the options it would
// give core.
func Example() {
	rt, err := wasm.NewRuntime(wasm.Options{})
	if err != nil {
		panic(err)
	}
	defer rt.Close()

	w, _ := core.ArrayOf([]int{2, 2}, []float32{1, 2, 3, 4})
	enc, _ := rt.EncMode(core.EncOptions{})
	msg, err := enc.Marshal(map[string]any{"round": int64(3), "w": w})
	if err != nil {
		panic(err)
	}
	native, _ := core.Marshal(map[string]any{"round": int64(3), "w": w})
	fmt.Println("same bytes as core:", string(msg) == string(native))

	dec, _ := rt.DecMode(core.DecOptions{})
	v, err := dec.Decode(msg)
	if err != nil {
		panic(err)
	}
	got := v.(map[string]any)
	elems, _ := core.Elements[float32](got["w"].(*core.Array))
	fmt.Println(got["round"], elems)

	_, err = dec.Decode(msg[:len(msg)-1])
	fmt.Println(err)
	// Output:
	// same bytes as core: true
	// 3 [1 2 3 4]
	// core: unexpected end of data at offset 42
}

// A source in the sandbox: the guest encodes the model by reference and
// keeps the transaction's books, the host keeps the array bytes and
// serves them over HTTP (hostdl) to a receiver.
func ExampleRuntime_NewTable() {
	rt, err := wasm.NewRuntime(wasm.Options{})
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	quiet := slog.New(slog.DiscardHandler)

	var table *wasm.Table
	src, err := hostdl.NewHost(hostdl.HostOptions{
		Logger: quiet,
		NewTable: func(o core.TableOptions) (hostdl.Table, error) {
			t, err := rt.NewTable(o)
			table = t
			return t, err
		},
	})
	if err != nil {
		panic(err)
	}
	defer src.Close()

	w, err := core.ArrayOf(nil, make([]float32, 1<<20)) // 4 MiB: by reference
	if err != nil {
		panic(err)
	}
	enc, err := rt.EncMode(core.EncOptions{ByRef: true, Source: src.Source()})
	if err != nil {
		panic(err)
	}
	msg, err := enc.Encode(map[string]any{"round": int64(3), "w": w})
	if err != nil {
		panic(err)
	}
	tx, err := table.Publish(msg.Batch(), core.PublishOptions{Names: []string{"agent-1"}})
	if err != nil {
		panic(err)
	}

	rcv, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: hostdl.ClientOptions{Receiver: "agent-1"}})
	if err != nil {
		panic(err)
	}
	defer rcv.Close()
	dec, err := rcv.DecMode(core.DecOptions{})
	if err != nil {
		panic(err)
	}
	v, err := dec.Decode(msg.Bytes())
	if err != nil {
		panic(err)
	}
	fmt.Println(v.(map[string]any)["w"].(*core.Array).Shape)

	out, err := tx.Wait(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(out.State, out.Confirmed())
	// Output:
	// [1048576]
	// completed [agent-1]
}
