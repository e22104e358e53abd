package demo

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
)

// Run builds a synthetic model of float32 and bfloat16 tensors, encodes
// it with arrays inline, decodes it, checks every byte and prints sizes and
// throughput; then it runs federated rounds on loopback (round.go).
func Run(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	sizeMiB := fs.Int("size", 64, "model size in `MiB`")
	tensors := fs.Int("tensors", 8, "`N` float32 tensors in the federated model")
	rounds := fs.Int("rounds", 3, "`N` federated rounds")
	agents := fs.Int("agents", 3, "`N` Go agents, each a process of its own")
	wasmAgents := fs.Int("wasm-agents", 1, "`N` Go agents whose codec and transaction table run in a wasm guest")
	python := fs.String("python", "", "`CMD` (interpreter and script) of a Python agent to add, which is\nbindings/python/examples/fl_agent.py")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on the rounds after `D` (90s, 10m, 1h)")
	store := fs.String("store", "", "the server and the Go agents publish through the object store `s3://BUCKET/PREFIX`\n(credentials, region and endpoint from the AWS environment variables)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *sizeMiB < 1 || *sizeMiB > 1<<16:
		return cli.Usagef("-size %d: want 1 to 65536 MiB", *sizeMiB)
	case *tensors < 1 || *tensors > (*sizeMiB<<20)/4:
		return cli.Usagef("-tensors %d: want 1 to %d (a float32 each, at least)", *tensors, (*sizeMiB<<20)/4)
	case *rounds < 1 || *rounds > 1000:
		return cli.Usagef("-rounds %d: want 1 to 1000", *rounds)
	case *agents < 0 || *agents > 64:
		return cli.Usagef("-agents %d: want 0 to 64", *agents)
	case *wasmAgents < 0 || *wasmAgents > 64:
		return cli.Usagef("-wasm-agents %d: want 0 to 64", *wasmAgents)
	case *agents == 0 && *wasmAgents == 0 && *python == "":
		return cli.Usagef("no agents: give -agents N, -wasm-agents N or -python CMD")
	case *timeout <= 0:
		return cli.Usagef("-timeout %v: want a positive duration", *timeout)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var kinds []agentKind
	var names []string
	for i := range *agents {
		kinds = append(kinds, goAgent(self, *store))
		names = append(names, fmt.Sprintf("agent-%d", i+1))
	}
	for i := range *wasmAgents {
		kinds = append(kinds, wasmAgent(self))
		names = append(names, fmt.Sprintf("wasm-agent-%d", i+1))
	}
	if py := strings.Fields(*python); len(py) > 0 {
		kinds = append(kinds, pythonAgent(py))
		names = append(names, "py-agent")
	}
	cfg := fedConfig{size: *sizeMiB << 20, tensors: *tensors, rounds: *rounds, lr: 0.5, store: *store}
	for i, k := range kinds {
		// The targets spread over (0, 1): the model's mean moves toward 0.5.
		cfg.agents = append(cfg.agents, agentSpec{name: names[i], kind: k, target: float32(i+1) / float32(len(kinds)+1)})
	}

	ctx, stop := cli.Interruptible(*timeout)
	defer stop()
	out := cli.NewProgress(os.Stdout)
	defer out.Close()
	if err := inlineRoundTrip(out, *sizeMiB<<20); err != nil {
		return err
	}
	out.Printf("\nfederated rounds on loopback (by reference, HTTP): %s, %s, each a process\n", cli.Plural(*rounds, "round"), cli.Plural(len(kinds), "agent"))
	if err := runRounds(ctx, cfg, out); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", cli.Ended(ctx, *timeout), err)
		}
		return err
	}
	return nil
}

// inlineRoundTrip encodes and decodes a synthetic model with its arrays
// inline, checks every byte, and prints sizes and the best speeds.
func inlineRoundTrip(out *cli.Progress, size int) error {
	model, total := syntheticModel(size)
	msg := map[string]any{"round": 3, "model": model}
	out.Printf("inline encode and decode:\n")
	out.Printf("model: %d tensors, %.1f MiB (float32 and bfloat16)\n", len(model), mib(total))

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
		decoded, err := core.Unmarshal(data)
		if err != nil {
			return err
		}
		decTime = min(decTime, time.Since(start))
		if err := verify(model, decoded); err != nil {
			return err
		}
	}
	out.Printf("message: %.1f MiB (%.4f%% framing overhead)\n", mib(len(data)), 100*float64(len(data)-total)/float64(total))
	out.Printf("best of %d rounds: encode %v (%.0f MiB/s), decode %v (%.0f MiB/s)\n", rounds,
		encTime.Round(time.Microsecond), mib(total)/encTime.Seconds(), decTime.Round(time.Microsecond), mib(total)/decTime.Seconds())
	out.Printf("verified: every tensor bit-exact\n")
	return nil
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
