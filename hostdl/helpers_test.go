package hostdl

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/leakcheck"
)

// quiet is the logger of tests that do not look at logs.
var quiet = slog.New(slog.DiscardHandler)

// model is a synthetic checkpoint: float32 tensors over one buffer.
type model struct {
	raw    []byte
	arrays map[string]*core.Array
}

// newModel returns size bytes (a multiple of 4) in tensors float32 tensors,
// filled from seed.
func newModel(size, tensors int, seed uint64) *model {
	m := &model{raw: make([]byte, size), arrays: map[string]*core.Array{}}
	x := seed*0x9E3779B97F4A7C15 | 1
	for i := 0; i+8 <= size; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(m.raw[i:], x)
	}
	per := size / tensors / 4 * 4
	for t, off := 0, 0; t < tensors; t++ {
		n := per
		if t == tensors-1 {
			n = size - off
		}
		a, err := core.NewArray(core.DTypeFloat32, []int{n / 4}, core.RowMajor, m.raw[off:off+n])
		if err != nil {
			panic(err)
		}
		m.arrays[fmt.Sprintf("layer.%03d", t)] = a
		off += n
	}
	return m
}

func (m *model) body() map[string]any {
	b := make(map[string]any, len(m.arrays))
	for k, a := range m.arrays {
		b[k] = a
	}
	return b
}

// check reports whether v, a decoded body, holds m's arrays bit for bit.
func (m *model) check(v any) error {
	body, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("decoded %T, want a map", v)
	}
	for k, a := range m.arrays {
		got, ok := body[k].(*core.Array)
		if !ok {
			return fmt.Errorf("%s: decoded %T", k, body[k])
		}
		if !bytes.Equal(got.Data, a.Data) {
			return fmt.Errorf("%s: bytes differ", k)
		}
	}
	return nil
}

// publish encodes body by reference with source, publishes the batch in
// table and returns the message and the transaction.
func publish(tb testing.TB, table *core.Table, source string, body any, o core.PublishOptions) ([]byte, *core.Transaction) {
	tb.Helper()
	em, err := core.EncOptions{ByRef: true, Source: source, RefThreshold: 1}.EncMode()
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := em.Encode(body)
	if err != nil {
		tb.Fatal(err)
	}
	tx, err := table.Publish(msg.Batch(), o)
	if err != nil {
		tb.Fatal(err)
	}
	return msg.Bytes(), tx
}

func newTable(tb testing.TB) *core.Table {
	tb.Helper()
	t, err := core.NewTable(core.TableOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(t.Close)
	return t
}

func startServer(tb testing.TB, table *core.Table, o ServerOptions) *Server {
	tb.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	s, err := NewServer(table, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newTestClient(tb testing.TB, o ClientOptions) *Client {
	tb.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	c, err := NewClient(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// decoder returns a DecMode that fetches with c.
func decoder(tb testing.TB, c *Client) *core.DecMode {
	tb.Helper()
	dm, err := core.DecOptions{Fetcher: c}.DecMode()
	if err != nil {
		tb.Fatal(err)
	}
	return dm
}

func wantKind(tb testing.TB, err error, k core.Kind) {
	tb.Helper()
	if got := core.KindOf(err); got != k {
		tb.Fatalf("error kind %v, want %v: %v", got, k, err)
	}
}

// settleGoroutines waits until at most n goroutines run, and fails the test
// with their stacks if they do not get there within 5s.
func settleGoroutines(tb testing.TB, n int) {
	tb.Helper()
	if stacks, ok := leakcheck.Settle(n, 5*time.Second); !ok {
		tb.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, stacks)
	}
}

// raceOrShort reports whether the test should use smaller inputs.
func raceOrShort() bool { return raceEnabled || testing.Short() }

// slowTransport delays every read of a response body: a slow receiver.
type slowTransport struct {
	rt    http.RoundTripper
	piece int
	pause atomic.Int64 // nanoseconds; 0: full speed
}

func (s *slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &slowBody{ReadCloser: resp.Body, s: s, ctx: r.Context()}
	}
	return resp, err
}

type slowBody struct {
	io.ReadCloser
	s   *slowTransport
	ctx context.Context
}

func (b *slowBody) Read(p []byte) (int, error) {
	pause := time.Duration(b.s.pause.Load())
	if pause == 0 {
		return b.ReadCloser.Read(p)
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
	return b.ReadCloser.Read(p[:min(len(p), b.s.piece)])
}

// slowDown makes c read response bodies piece bytes per pause.
func slowDown(c *Client, piece int, pause time.Duration) *slowTransport {
	s := &slowTransport{rt: c.tr, piece: piece}
	s.pause.Store(int64(pause))
	c.hc.Transport = s
	return s
}

func newSlowTransport(piece int, pause time.Duration) *slowTransport {
	s := &slowTransport{piece: piece}
	s.pause.Store(int64(pause))
	return s
}

// procStatus reads a field in kB from /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) int64 {
	p := "/proc/self/status"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// procCPU returns the CPU time, user and system, of process pid from
// /proc/<pid>/stat, or -1 where it cannot be read.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the whole line, in USER_HZ (100) ticks.
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func numGoroutine() int { return runtime.NumGoroutine() }

func itoa(n int) string { return strconv.Itoa(n) }

// procMeminfo reads a field of /proc/meminfo in bytes, or -1.
func procMeminfo(field string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}
