package demo

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/viacodec/viacodec/core"
)

// The demo's processes talk over their standard streams in frames: an
// 8-byte big-endian length, then a viacodec message with every value
// inline (core.Marshal), a map whose "op" says what it is. Array bytes
// never travel in frames: the messages frames carry hold references, and
// receivers download the arrays straight from their source.
//
//	to a process       {"op": "task", "msg": bytes}            agent: decode, train, answer
//	                   {"op": "forward", "msg": bytes}         relay: pass through, re-encode
//	                   {"op": "forward", "msg", "cache": true} relay: first re-point it at its cache (sites.go)
//	                   {"op": "cache-stats"}                   relay: its cache's counters
//	from a process     {"op": "hello", "name", "kind", "pid", "rss"}
//	                   {"op": "progress", "done", "total"}     bytes of the download so far
//	                   {"op": "result", "msg": update, "report": report, "sha256": {name: digest}, "uploaded": bool}
//	                   {"op": "forwarded", "msg": bytes, "report": report}
//	                   {"op": "outcome", "round", "state", "confirmed": [names], "served"}
//	                   {"op": "cache-stats", "peak", "upstream", "budget", "served"}
//
// A task across sites also holds "grants": {agent: hostdl.UploadGrant as
// JSON}; an agent that can upload publishes its update by uploading it to
// the server under its grant ("uploaded": true).
//
// A report: {"round", "held" (array bytes held), "lazy" (lazy refs held),
// "downloaded" (bytes its client fetched, -1 if it does not count them),
// "ns" (decode time), "sha256" ({name: digest} of the arrays received),
// "rss" (VmHWM, bytes)}. An outcome's "served" maps each receiver of the
// update to the bytes served to it.
//
// Closing a process's standard input ends it: the server does so once it
// has every outcome it waits for. bindings/python/examples/fl_agent.py
// speaks the same frames.

// maxFrame bounds a frame: messages by reference are small.
const maxFrame = 64 << 20

// readFrame reads one frame; io.EOF at a clean end of the stream.
func readFrame(r io.Reader) (map[string]any, error) {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("truncated frame header")
		}
		return nil, err
	}
	size := binary.BigEndian.Uint64(n[:])
	if size > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes is over the limit of %d", size, maxFrame)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("truncated frame: %w", err)
	}
	v, err := core.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("frame holds %T, not a map", v)
	}
	return m, nil
}

// frameWriter writes frames from several goroutines.
type frameWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newFrameWriter(w io.Writer) *frameWriter { return &frameWriter{w: bufio.NewWriter(w)} }

func (fw *frameWriter) write(v map[string]any) error {
	data, err := core.Marshal(v)
	if err != nil {
		return err
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.w.Write(binary.BigEndian.AppendUint64(nil, uint64(len(data))))
	fw.w.Write(data)
	return fw.w.Flush()
}

// fields reads the fields of a frame, keeping the first error: a frame
// with a field missing or of the wrong type.
type fields struct {
	m   map[string]any
	err *error // shared with the fields of its sub-maps
}

func newFields(m map[string]any) *fields { return &fields{m: m, err: new(error)} }

// fail keeps the first error.
func (f *fields) fail(err error) {
	if *f.err == nil {
		*f.err = err
	}
}

func (f *fields) get(key string) any {
	v, ok := f.m[key]
	if !ok {
		f.fail(fmt.Errorf("frame has no %q", key))
	}
	return v
}

func (f *fields) wrong(key string, v any, want string) {
	f.fail(fmt.Errorf("frame's %q is %T, not %s", key, v, want))
}

func (f *fields) str(key string) string {
	v := f.get(key)
	s, ok := v.(string)
	if !ok {
		f.wrong(key, v, "text")
	}
	return s
}

func (f *fields) int(key string) int64 {
	v := f.get(key)
	switch n := v.(type) {
	case int64:
		return n
	case uint64:
		f.wrong(key, v, "an integer below 2^63")
	default:
		f.wrong(key, v, "an integer")
	}
	return 0
}

func (f *fields) bytes(key string) []byte {
	v := f.get(key)
	b, ok := v.([]byte)
	if !ok {
		f.wrong(key, v, "bytes")
	}
	return b
}

func (f *fields) sub(key string) *fields {
	v := f.get(key)
	m, ok := v.(map[string]any)
	if !ok {
		f.wrong(key, v, "a map")
	}
	return &fields{m: m, err: f.err}
}

// digests reads a map of name to SHA-256 digest.
func (f *fields) digests(key string) map[string][]byte {
	v := f.get(key)
	m, ok := v.(map[string]any)
	if !ok {
		f.wrong(key, v, "a map")
		return nil
	}
	out := make(map[string][]byte, len(m))
	for name, d := range m {
		b, ok := d.([]byte)
		if !ok || len(b) != 32 {
			f.wrong(key+"."+name, d, "a 32-byte digest")
			return nil
		}
		out[name] = b
	}
	return out
}

func (f *fields) strings(key string) []string {
	v := f.get(key)
	l, ok := v.([]any)
	if !ok {
		f.wrong(key, v, "a list")
		return nil
	}
	out := make([]string, 0, len(l))
	for _, s := range l {
		t, ok := s.(string)
		if !ok {
			f.wrong(key, s, "a list of text")
			return nil
		}
		out = append(out, t)
	}
	return out
}

// error returns the first error of f or of its sub-maps.
func (f *fields) error() error { return *f.err }

// float32 reads a number as a float32 (a float32 written by Go, or a
// float Python wrote that holds one).
func (f *fields) float32(key string) float32 {
	v := f.get(key)
	switch x := v.(type) {
	case float32:
		return x
	case float64:
		if float64(float32(x)) == x {
			return float32(x)
		}
		f.wrong(key, v, "a float32")
	default:
		f.wrong(key, v, "a float32")
	}
	return 0
}
