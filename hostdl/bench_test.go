package hostdl

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/arraytest"
	"github.com/viacodec/viacodec/internal/cputime"
)

// The benchmarks model a checkpoint of 1 GiB in 100 float32 tensors
// (benchModelSize, benchTensors), served by a Server in this process (or,
// for BenchmarkDownload64, in a child process). Each reports its throughput
// over the array bytes (b.SetBytes) and, as "x-tcp", its ratio to raw
// loopback TCP measured in the same run: a 1 GiB single-stream transfer,
// untimed, before each timed iteration (pairedTCP), so that a busy machine
// weighs on both alike; and, as "x-tcp4", over four connections at once,
// the shape of a download's ranges. "cpu-x-tcp" and "cpu-x-tcp4" are the
// CPU per GiB of the download (source and receiver) over TCP's. The paired ones also report CPU per GiB and, on
// Linux, read and write syscalls per MiB (the process's, source and
// receiver together), each beside TCP's. docs/benchmarks.md (## hostdl)
// records the results.

const (
	benchModelSize = 1 << 30
	benchTensors   = 100
	benchSmallSize = 64 << 20 // per receiver in BenchmarkDownload64
)

// benchState is built once per process and shared by every benchmark.
var bench struct {
	once  sync.Once
	mdl   *model
	table *core.Table
	srv   *Server
	enc   *core.EncMode
	msg   []byte

	arenaMu sync.Mutex
	arenas  [][]byte // prefaulted 1 GiB destinations, reused

}

// benchSource serves the 1 GiB model in this process.
func benchSource(b *testing.B) {
	bench.once.Do(func() {
		bench.mdl = newModel(benchModelSize, benchTensors, 42)
		t, err := core.NewTable(core.TableOptions{})
		if err != nil {
			panic(err)
		}
		srv, err := NewServer(t, ServerOptions{Logger: quiet})
		if err != nil {
			panic(err)
		}
		em, _ := core.EncOptions{ByRef: true, Source: srv.Source()}.EncMode()
		msg, err := em.Encode(bench.mdl.body())
		if err != nil {
			panic(err)
		}
		if _, err := t.Publish(msg.Batch(), core.PublishOptions{Timeout: 24 * time.Hour}); err != nil {
			panic(err)
		}
		bench.table, bench.srv, bench.enc, bench.msg = t, srv, em, msg.Bytes()
		// One download before any timing: the source then knows each
		// piece's sum (core.PieceSums), as for every receiver after the
		// first. The published row measures a first receiver.
		c, err := NewClient(ClientOptions{Logger: quiet})
		if err != nil {
			panic(err)
		}
		defer c.Close()
		dm, _ := core.DecOptions{Fetcher: c, Allocator: arraytest.Arena(arena(0))}.DecMode()
		if _, err := dm.Decode(bench.msg); err != nil {
			panic(err)
		}
	})
	if bench.msg == nil {
		b.Fatal("the benchmark source failed to start")
	}
}

// arena returns the i-th prefaulted 1 GiB destination.
func arena(i int) []byte {
	bench.arenaMu.Lock()
	defer bench.arenaMu.Unlock()
	for len(bench.arenas) <= i {
		a := make([]byte, benchModelSize)
		for j := 0; j < len(a); j += 4096 {
			a[j] = 1
		}
		bench.arenas = append(bench.arenas, a)
	}
	return bench.arenas[i]
}

// tcpTransfer sends src over one loopback TCP connection into dst and
// returns the time it took.
func tcpTransfer(src, dst []byte) (time.Duration, error) { return tcpTransferN(src, dst, 1, false) }

// tcpTransferN sends src over conns loopback TCP connections at once, each
// carrying an equal share in 4 MiB writes into its part of dst, as a
// download's ranges do over the client's connections, and returns the
// time it took. With fit, the sending side's connections get the send
// buffer a Server gives them (fitSendBuffer); else the system's.
func tcpTransferN(src, dst []byte, conns int, fit bool) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	share := (len(src) + conns - 1) / conns
	part := func(i int) (int, int) { return min(i*share, len(src)), min((i+1)*share, len(src)) }
	errc := make(chan error, conns)
	go func() {
		for range conns {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			if fit {
				fitSendBuffer(c)
			}
			go func() {
				defer c.Close()
				var i [1]byte
				if _, err := io.ReadFull(c, i[:]); err != nil {
					errc <- err
					return
				}
				lo, hi := part(int(i[0]))
				for off := lo; off < hi; off += 4 << 20 {
					if _, err := c.Write(src[off:min(off+4<<20, hi)]); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	recv := make(chan error, conns)
	for i := range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				recv <- err
				return
			}
			defer c.Close()
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				recv <- err
				return
			}
			lo, hi := part(i)
			_, err = io.ReadFull(c, dst[lo:hi])
			recv <- err
		})
	}
	wg.Wait()
	d := time.Since(start)
	for range conns {
		if err := <-recv; err != nil {
			return 0, err
		}
		if err := <-errc; err != nil {
			return 0, err
		}
	}
	return d, nil
}

// pairedTCP measures raw loopback TCP in the same run as a benchmark: one
// 1 GiB transfer, untimed, before each timed iteration, so that both see the
// machine as it is then (other processes share it). It also measures the
// process's CPU time for both, since a busy machine gives the download's
// several threads less than the two cores it can use. With fresh, the
// transfer goes into new memory, page faults and all, as a download into
// fresh memory does.
type pairedTCP struct {
	b               *testing.B
	fresh           bool
	tcpWall, tcpCPU time.Duration
	// the same over DefaultConcurrency connections at once (tcpTransferN),
	// the shape of a download's ranges: "x-tcp4", "tcp4-cpu-ms/GiB"
	tcp4Wall, tcp4CPU time.Duration
	n                 int
	cpu0, dlCPU       time.Duration
	// read and write syscalls (ioCalls): TCP's, the download's (source
	// and receiver in this process), and the counts at its start
	tcpR, tcpW, dlR, dlW, r0, w0 int64
}

// measure runs one TCP transfer with the timer stopped; call it first in
// each iteration.
func (p *pairedTCP) measure() {
	p.b.StopTimer()
	dst := p.dst()
	c0 := cputime.Process()
	r0, w0 := ioCalls()
	d, err := tcpTransfer(bench.mdl.raw, dst)
	if err != nil {
		p.b.Fatal(err)
	}
	p.tcpCPU += cputime.Process() - c0
	r1, w1 := ioCalls()
	p.tcpR, p.tcpW = p.tcpR+r1-r0, p.tcpW+w1-w0
	p.tcpWall += d
	dst = nil // unreferenced before p.dst gives memory back
	dst = p.dst()
	c0 = cputime.Process()
	d, err = tcpTransferN(bench.mdl.raw, dst, DefaultConcurrency, false)
	if err != nil {
		p.b.Fatal(err)
	}
	p.tcp4CPU += cputime.Process() - c0
	p.tcp4Wall += d
	p.n++
	if p.fresh {
		// The transfers' memory goes back to the system, so that the
		// download's new memory is fresh too, not their pages reused.
		dst = nil
		debug.FreeOSMemory()
	}
	p.cpu0 = cputime.Process()
	p.r0, p.w0 = ioCalls()
	p.b.StartTimer()
}

// dst returns a yardstick transfer's destination: the arena or, with
// fresh, new memory, after what transfers before it left went back to
// the system (so that no page of it is already faulted in).
func (p *pairedTCP) dst() []byte {
	if !p.fresh {
		return arena(0)
	}
	debug.FreeOSMemory()
	return make([]byte, len(bench.mdl.raw))
}

// done ends an iteration's CPU measurement; call it last in each iteration.
func (p *pairedTCP) done() {
	p.dlCPU += cputime.Process() - p.cpu0
	r, w := ioCalls()
	p.dlR, p.dlW = p.dlR+r-p.r0, p.dlW+w-p.w0
}

// report adds the ratio of the benchmark's throughput over bytesPerOp to
// raw TCP's, raw TCP's rate, and the CPU time per GiB of both.
func (p *pairedTCP) report(bytesPerOp int64) {
	tcp := float64(p.n) * benchModelSize / p.tcpWall.Seconds()
	rate := float64(bytesPerOp) * float64(p.b.N) / p.b.Elapsed().Seconds()
	p.b.ReportMetric(rate/tcp, "x-tcp")
	p.b.ReportMetric(tcp/1e6, "tcp-MB/s")
	p.b.ReportMetric(rate*p.tcp4Wall.Seconds()/(float64(p.n)*benchModelSize), "x-tcp4")
	if p.dlCPU > 0 {
		gib := float64(bytesPerOp) * float64(p.b.N) / benchModelSize
		cpu := p.dlCPU.Seconds() * 1e3 / gib
		tcpCPU := p.tcpCPU.Seconds() * 1e3 / float64(p.n)
		tcp4CPU := p.tcp4CPU.Seconds() * 1e3 / float64(p.n)
		p.b.ReportMetric(cpu, "cpu-ms/GiB")
		p.b.ReportMetric(tcpCPU, "tcp-cpu-ms/GiB")
		p.b.ReportMetric(tcp4CPU, "tcp4-cpu-ms/GiB")
		p.b.ReportMetric(cpu/tcpCPU, "cpu-x-tcp")
		p.b.ReportMetric(cpu/tcp4CPU, "cpu-x-tcp4")
	}
	if p.dlR > 0 {
		mib := float64(bytesPerOp) * float64(p.b.N) / (1 << 20)
		tcpMiB := float64(p.n) * benchModelSize / (1 << 20)
		p.b.ReportMetric(float64(p.dlR)/mib, "reads/MiB")
		p.b.ReportMetric(float64(p.dlW)/mib, "writes/MiB")
		p.b.ReportMetric(float64(p.tcpR)/tcpMiB, "tcp-reads/MiB")
		p.b.ReportMetric(float64(p.tcpW)/tcpMiB, "tcp-writes/MiB")
	}
}

// BenchmarkLoopbackTCP is the yardstick: 1 GiB over one loopback TCP
// connection, from the model's memory into a prefaulted buffer, with the
// system's send buffer ("system-buffer", the yardstick the other
// benchmarks pair with) and with the one a Server gives a near connection
// ("near-buffer"); and the same over four connections. Each reports its
// CPU per GiB.
func BenchmarkLoopbackTCP(b *testing.B) {
	benchSource(b)
	dst := arena(0)
	for _, bc := range []struct {
		name  string
		conns int
		fit   bool
	}{
		{"1-system-buffer", 1, false},
		{"1-near-buffer", 1, true},
		{"4-system-buffer", DefaultConcurrency, false},
		{"4-near-buffer", DefaultConcurrency, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(benchModelSize)
			c0 := cputime.Process()
			for b.Loop() {
				if _, err := tcpTransferN(bench.mdl.raw, dst, bc.conns, bc.fit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cputime.Process()-c0).Seconds()*1e3/float64(b.N), "cpu-ms/GiB")
		})
	}
}

// BenchmarkDownload: receivers decode the 1 GiB model at once, through
// their own Client each. Except in "published", the model was served once
// before (benchSource): the source knows its pieces' sums and sends each
// with its piece, as for every receiver after a batch's first. "arena" decodes into prefaulted memory the
// consumer owns (an Allocator), like the TCP yardstick; "fresh" into new Go
// memory, page faults and all (its yardstick is TCP into fresh memory
// too); "published" publishes the model afresh in
// each iteration (timed), so that the source's work between a publish and
// its first byte counts, as it does for a receiver that asks right away.
func BenchmarkDownload(b *testing.B) {
	benchSource(b)
	for _, bc := range []struct {
		name      string
		receivers int
		proto     Protocol
		fresh     bool
		publish   bool
	}{
		{"1x-http1-arena", 1, HTTP1, false, false},
		{"1x-http1-fresh", 1, HTTP1, true, false},
		{"1x-http1-published", 1, HTTP1, false, true},
		{"1x-http2-arena", 1, HTTP2, false, false},
		{"4x-http1-arena", 4, HTTP1, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			clients := make([]*Client, bc.receivers)
			for i := range clients {
				clients[i] = newTestClient(b, ClientOptions{Protocol: bc.proto})
				arena(i)
			}
			tcp := &pairedTCP{b: b, fresh: bc.fresh}
			b.SetBytes(int64(bc.receivers) * benchModelSize)
			for b.Loop() {
				tcp.measure()
				msg := bench.msg
				if bc.publish {
					msg = publishAfresh(b)
				}
				var wg sync.WaitGroup
				for i, c := range clients {
					wg.Go(func() {
						o := core.DecOptions{Fetcher: c}
						if !bc.fresh {
							o.Allocator = arraytest.Arena(arena(i))
						}
						dm, _ := o.DecMode()
						if _, err := dm.Decode(msg); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				tcp.done()
			}
			tcp.report(int64(bc.receivers) * benchModelSize)
		})
	}
}

// publishAfresh encodes the benchmark's model by reference and publishes
// it as a new batch for one receiver; it returns the message.
func publishAfresh(b *testing.B) []byte {
	msg, err := bench.enc.Encode(bench.mdl.body())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bench.table.Publish(msg.Batch(), core.PublishOptions{Receivers: 1}); err != nil {
		b.Fatal(err)
	}
	return msg.Bytes()
}

// BenchmarkDownload64 runs 64 receivers at once against a source in a
// child process serving a 64 MiB model (64 copies of 1 GiB do not fit in
// memory), and reports the growth of the source's RSS while serving and
// its CPU per GiB served ("cpu-ms/GiB" is the receivers' alone).
func BenchmarkDownload64(b *testing.B) {
	const receivers = 64
	src := startChild(b, "source", "HOSTDL_SIZE="+strconv.Itoa(benchSmallSize), "HOSTDL_TENSORS="+strconv.Itoa(benchTensors))
	msg := src.message(b)
	pid := src.cmd.Process.Pid
	rss0 := procStatus(pid, "VmRSS")
	clients := make([]*Client, receivers)
	for i := range clients {
		clients[i] = newTestClient(b, ClientOptions{})
	}
	per := benchModelSize / benchSmallSize
	for i := range receivers / per {
		arena(i)
	}
	benchSource(b) // for the TCP yardstick's bytes
	tcp := &pairedTCP{b: b}
	b.SetBytes(receivers * benchSmallSize)
	srcCPU := procCPU(pid)
	for b.Loop() {
		tcp.measure()
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				a := arena(i / per)
				k := i % per
				dm, _ := core.DecOptions{Fetcher: c, Allocator: arraytest.Arena(a[k*benchSmallSize : (k+1)*benchSmallSize])}.DecMode()
				if _, err := dm.Decode(msg); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		tcp.done()
	}
	tcp.report(receivers * benchSmallSize)
	if c := procCPU(pid); srcCPU >= 0 && c >= 0 {
		gib := float64(b.N) * receivers * benchSmallSize / (1 << 30)
		b.ReportMetric((c-srcCPU).Seconds()*1e3/gib, "src-cpu-ms/GiB")
	}
	hwm := procStatus(pid, "VmHWM")
	b.ReportMetric(float64(hwm-rss0)/(1<<20), "src-rss-growth-MiB")
}

// BenchmarkReceiverPeakRSS runs a receiver in a child process that decodes
// the 1 GiB model into Go memory and reports its peak RSS (VmHWM), and
// how far that is above the model's size.
func BenchmarkReceiverPeakRSS(b *testing.B) {
	benchSource(b)
	file := filepath.Join(b.TempDir(), "msg")
	if err := os.WriteFile(file, bench.msg, 0o600); err != nil {
		b.Fatal(err)
	}
	var peak int64
	b.SetBytes(benchModelSize)
	for b.Loop() {
		rc := startChild(b, "receive", "HOSTDL_MSG="+file)
		v, err := strconv.ParseInt(rc.line(b, "HWM"), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, v)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(peak-benchModelSize)/(1<<20), "over-model-MiB")
}

// BenchmarkUpload: a source with no listener uploads the 1 GiB model
// (Client.Upload) to a holder Host in this process, which receives it into
// new memory; its yardstick is TCP into fresh memory. Each iteration has a
// holder of its own, made and closed untimed.
func BenchmarkUpload(b *testing.B) {
	benchSource(b)
	src := newTestClient(b, ClientOptions{Receiver: "source"})
	tcp := &pairedTCP{b: b, fresh: true}
	b.SetBytes(benchModelSize)
	for b.Loop() {
		b.StopTimer()
		holder, err := NewHost(HostOptions{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		grant, err := holder.GrantUpload(UploadOptions{MaxBytes: benchModelSize})
		if err != nil {
			b.Fatal(err)
		}
		msg := encodeFor(b, grant, bench.mdl.body())
		tcp.measure()
		if _, err := src.Upload(b.Context(), grant, msg.Batch(), core.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
		tcp.done()
		b.StopTimer()
		holder.Close()
		b.StartTimer()
	}
	tcp.report(benchModelSize)
}
