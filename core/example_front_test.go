package core_test

import (
	"context"
	"fmt"

	"github.com/viacodec/viacodec/core"
)

// ArrayOf views a typed slice as an array, without copying it; the shape
// says how its elements are laid out (row-major).
func ExampleArrayOf() {
	w, err := core.ArrayOf([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err != nil {
		panic(err)
	}
	fmt.Println(w.DType, w.Shape, w.Order, len(w.Data), "bytes")

	// A shape that does not match the elements is an error.
	_, err = core.ArrayOf([]int{4, 4}, []float32{1, 2})
	fmt.Println(core.KindOf(err))
	// Output:
	// float32 [2 3] C 24 bytes
	// mismatch
}

// The obvious Go types encode as what they stand for: a typed slice is a
// 1-d array, a []string a list, a map[string]int a map. A struct is not
// in the value model: the error says what to convert it to.
func ExampleMarshal_goTypes() {
	data, err := core.Marshal(map[string]any{
		"w":      []float32{0.5, 1.5},
		"labels": []string{"cat", "dog"},
		"counts": map[string]int{"cat": 3},
	})
	if err != nil {
		panic(err)
	}
	v, _ := core.Unmarshal(data)
	m := v.(map[string]any)
	w := m["w"].(*core.Array)
	fmt.Println(w.DType, w.Shape, m["labels"], m["counts"])

	type point struct{ X, Y int }
	_, err = core.Marshal(point{1, 2})
	fmt.Println(err)
	// Output:
	// float32 [2] [cat dog] map[cat:3]
	// core: cannot encode a Go struct (core_test.point): structs are not in the value model; convert it to map[string]any, or register its type (Registry)
}

// Options are validated once into an immutable mode, safe for concurrent
// use; the zero value is the default. A value out of range is an error
// of kind invalid.
func ExampleEncOptions_EncMode() {
	enc, err := core.EncOptions{MaxDepth: 16}.EncMode()
	if err != nil {
		panic(err)
	}
	fmt.Println(enc.Options().MaxDepth, enc.Options().RefThreshold)

	_, err = core.EncOptions{MaxDepth: 100000}.EncMode()
	fmt.Println(err)
	// Output:
	// 16 1048576
	// core: EncOptions.MaxDepth 100000 is outside 1..4096
}

// By reference, arrays of RefThreshold bytes or more leave the message:
// it carries a ref node, and the encoder returns the arrays as a batch
// (views of the caller's memory) for the source's Table to serve. A relay
// decodes with PassThrough and sees each reference, not its bytes.
func ExampleEncOptions_byReference() {
	enc, err := core.EncOptions{ByRef: true, RefThreshold: 1024, Source: "http://server:8080"}.EncMode()
	if err != nil {
		panic(err)
	}
	weights := make([]float32, 1<<20) // 4 MiB
	msg, err := enc.Encode(map[string]any{"round": 3, "w": weights})
	if err != nil {
		panic(err)
	}
	b := msg.Batch()
	fmt.Println(msg.Len(), "bytes of message;", len(b.Items), "item of", b.Ref.Bytes, "bytes by reference")

	relay := core.MustMode(core.DecOptions{PassThrough: true}.DecMode())
	v, err := relay.Decode(msg.Bytes())
	if err != nil {
		panic(err)
	}
	l := v.(map[string]any)["w"].(*core.LazyRef)
	fmt.Println(l.DType, l.Shape, l.Batch.Source)
	// Output:
	// 118 bytes of message; 1 item of 4194304 bytes by reference
	// float32 [1048576] http://server:8080
}

// A Table is the source's side of references: publishing a batch opens a
// transaction that serves it to its receivers and ends when they have
// confirmed. Here the receiver downloads in the same process
// (TableFetcher); hostdl serves a Table over HTTP.
func ExampleTable() {
	const source = "http://server:8080"
	table, err := core.NewTable(core.TableOptions{})
	if err != nil {
		panic(err)
	}
	defer table.Close()

	enc := core.MustMode(core.EncOptions{ByRef: true, RefThreshold: 16, Source: source}.EncMode())
	msg, err := enc.Encode(map[string]any{"w": []float64{1, 2, 3, 4}})
	if err != nil {
		panic(err)
	}
	tx, err := table.Publish(msg.Batch(), core.PublishOptions{Names: []string{"client-1"}})
	if err != nil {
		panic(err)
	}

	fetcher := &core.TableFetcher{Sources: map[string]*core.Table{source: table}, Receiver: "client-1"}
	dec := core.MustMode(core.DecOptions{Fetcher: fetcher}.DecMode())
	v, err := dec.Decode(msg.Bytes())
	if err != nil {
		panic(err)
	}
	w, _ := core.Elements[float64](v.(map[string]any)["w"].(*core.Array))
	fmt.Println(w)

	out, err := tx.Wait(context.Background())
	fmt.Println(out.State, out.Confirmed(), err)
	// Output:
	// [1 2 3 4]
	// completed [client-1] <nil>
}
