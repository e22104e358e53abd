package offload_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/offload"
)

// benchMiB is the model of BenchmarkDownload: 256 MiB, or
// VIACODEC_BENCH_OFFLOAD_MIB (docs/benchmarks.md ran 4096).
func benchMiB(b *testing.B) int {
	if s := os.Getenv("VIACODEC_BENCH_OFFLOAD_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("VIACODEC_BENCH_OFFLOAD_MIB=%q", s)
		}
		return n
	}
	return 256
}

// vmHWM returns the process's peak resident memory; resetHWM starts it
// afresh from the current resident memory.
func vmHWM(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		var kib int64
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kib); err == nil {
			return kib << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

func resetHWM(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// BenchmarkDownload downloads a by-reference model of 64 MiB tensors
// from a source on loopback, into memory and offloaded to a file (in
// TMPDIR), in the same run: throughput (MB/s) and the receiver's peak
// RSS growth (rss-MiB; the source's model and the page cache are not
// the receiver's). Every download is checked bit for bit.
func BenchmarkDownload(b *testing.B) {
	size := benchMiB(b) << 20
	src, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	rcv, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer rcv.Close()
	const tensor = 64 << 20
	model := map[string]any{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < size; i += tensor {
		n := min(tensor, size-i)
		data := make([]byte, n)
		for j := 0; j+8 <= n; j += 8 {
			binary.LittleEndian.PutUint64(data[j:], rng.Uint64())
		}
		a, _ := core.NewArray(core.DTypeFloat32, []int{n / 4}, core.RowMajor, data)
		model[fmt.Sprintf("layer%03d", i/tensor)] = a
	}
	enc, err := src.EncMode(core.EncOptions{ByRef: true})
	if err != nil {
		b.Fatal(err)
	}
	dec, err := rcv.DecMode(core.DecOptions{})
	if err != nil {
		b.Fatal(err)
	}
	send := func() []byte {
		m, err := enc.Encode(model)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := src.Publish(m.Batch(), core.PublishOptions{Receivers: 1}); err != nil {
			b.Fatal(err)
		}
		return m.Bytes()
	}
	check := func(body any) {
		for k, v := range body.(map[string]any) {
			if !bytes.Equal(v.(*core.Array).Data, model[k].(*core.Array).Data) {
				b.Fatalf("%s differs", k)
			}
		}
	}
	dir := b.TempDir()
	for _, mode := range []string{"offload", "memory"} {
		b.Run(fmt.Sprintf("%dMiB/%s", size>>20, mode), func(b *testing.B) {
			b.SetBytes(int64(size))
			var peak int64
			for b.Loop() {
				msg := send()
				b.StopTimer()
				resetHWM(b)
				base := vmHWM(b)
				b.StartTimer()
				var body any
				var v *offload.Value
				if mode == "offload" {
					v, err = offload.Decode(context.Background(), dec, msg, offload.Options{Dir: dir})
					if v != nil {
						body = v.Body
					}
				} else {
					body, err = dec.Decode(msg)
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				peak = max(peak, vmHWM(b)-base)
				check(body)
				if v != nil {
					v.Close()
				}
				body = nil
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/(1<<20), "rss-MiB")
		})
	}
}
