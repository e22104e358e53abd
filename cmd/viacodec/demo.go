package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/viacodec/viacodec/core"
)

// runDemo builds a synthetic model of float32 and bfloat16 tensors, encodes
// it with arrays inline, decodes it, checks every byte and prints sizes and
// throughput.
func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	sizeMiB := fs.Int("size", 64, "model size in MiB")
	agents := fs.Int("agents", 3, "Go agents in the federated round")
	python := fs.String("python", "", "command of a Python agent (interpreter and script) to add to the round")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	model, total := syntheticModel(*sizeMiB << 20)
	msg := map[string]any{"round": 3, "model": model}
	fmt.Println("inline encode and decode:")
	fmt.Printf("model: %d tensors, %.1f MiB (float32 and bfloat16)\n", len(model), mib(total))

	// The first round also pays for the process's first touch of fresh
	// memory; the best of a few rounds shows the codec's own speed.
	const rounds = 3
	var data []byte
	encTime, decTime := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range rounds {
		start := time.Now()
		var err error
		data, err = core.Marshal(msg)
		if err != nil {
			return err
		}
		encTime = min(encTime, time.Since(start))

		start = time.Now()
		out, err := core.Unmarshal(data)
		if err != nil {
			return err
		}
		decTime = min(decTime, time.Since(start))
		if err := verify(model, out); err != nil {
			return err
		}
	}
	fmt.Printf("message: %.1f MiB (%.4f%% framing overhead)\n", mib(len(data)), 100*float64(len(data)-total)/float64(total))
	fmt.Printf("best of %d rounds:\n", rounds)
	fmt.Printf("encode: %v (%.0f MiB/s)\n", encTime.Round(time.Microsecond), mib(total)/encTime.Seconds())
	fmt.Printf("decode: %v (%.0f MiB/s)\n", decTime.Round(time.Microsecond), mib(total)/decTime.Seconds())
	fmt.Println("verified: every tensor bit-exact")

	fmt.Println("\nfederated round on loopback (by reference, HTTP):")
	var py []string
	if *python != "" {
		py = strings.Fields(*python)
	}
	return runRound(model, total, *agents, py)
}

func mib(n int) float64 { return float64(n) / (1 << 20) }

// syntheticModel returns tensors named like a transformer's layers,
// alternating float32 and bfloat16, that total about size bytes.
func syntheticModel(size int) (map[string]any, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]any{}
	total := 0
	for layer := 0; total < size; layer++ {
		const rows, cols = 512, 1024
		w := make([]float32, rows*cols)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.02)
		}
		a, _ := core.ArrayOf([]int{rows, cols}, w)
		model[fmt.Sprintf("layers.%d.attn.weight", layer)] = a
		total += len(a.Data)

		h := make([]core.BFloat16, rows*cols)
		for i := range h {
			h[i] = core.BFloat16From(rng.NormFloat64() * 0.02)
		}
		b, _ := core.ArrayOf([]int{rows, cols}, h)
		model[fmt.Sprintf("layers.%d.mlp.weight", layer)] = b
		total += len(b.Data)

		bias := []float32{float32(math.Pi), float32(layer)}
		c, _ := core.ArrayOf(nil, bias)
		model[fmt.Sprintf("layers.%d.mlp.bias", layer)] = c
		total += len(c.Data)
	}
	return model, total
}

func verify(model map[string]any, decoded any) error {
	msg, ok := decoded.(map[string]any)
	if !ok {
		return fmt.Errorf("decoded %T, want a map", decoded)
	}
	got, ok := msg["model"].(map[string]any)
	if !ok || len(got) != len(model) {
		return fmt.Errorf("decoded message has the wrong shape")
	}
	for name, v := range model {
		want := v.(*core.Array)
		a, ok := got[name].(*core.Array)
		if !ok || a.DType != want.DType || fmt.Sprint(a.Shape) != fmt.Sprint(want.Shape) || !bytes.Equal(a.Data, want.Data) {
			return fmt.Errorf("tensor %s differs after the round trip", name)
		}
	}
	return nil
}
