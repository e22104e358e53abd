package wasm_test

import (
	"fmt"

	"github.com/viacodec/viacodec/core"
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
