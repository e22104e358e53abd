package offload_test

import (
	"context"
	"fmt"
	"os"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/internal/tensorfile"
	"github.com/viacodec/viacodec/offload"
)

// A receiver decodes a message whose arrays download into a safetensors
// file instead of memory; the value views the file until it is closed.
func ExampleDecode() {
	src, _ := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	defer src.Close()
	rcv, _ := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	defer rcv.Close()

	w, _ := core.ArrayOf([]int{512, 1024}, make([]float32, 512*1024)) // 2 MiB: by reference
	enc, _ := src.EncMode(core.EncOptions{})
	msg, _ := enc.Encode(map[string]any{"round": 3, "model": map[string]any{"w": w}})
	src.Publish(msg.Batch(), core.PublishOptions{Receivers: 1})

	dir, _ := os.MkdirTemp("", "offload-example-")
	defer os.RemoveAll(dir)
	dec, _ := rcv.DecMode(core.DecOptions{})
	v, err := offload.Decode(context.Background(), dec, msg.Bytes(), offload.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	a := v.Body.(map[string]any)["model"].(map[string]any)["w"].(*core.Array)
	fmt.Println(a.DType, a.Shape)

	data, _ := os.ReadFile(v.Path()) // a safetensors file, which others open too
	file, _ := tensorfile.Read(tensorfile.Safetensors, data)
	fmt.Println(file.Tensors[0].Name, file.Tensors[0].Array.Shape)

	v.Close() // removes the file (Options.Keep leaves it)
	left, _ := os.ReadDir(dir)
	fmt.Println(len(left), "files left")
	// Output:
	// float32 [512 1024]
	// model.w [512 1024]
	// 0 files left
}
