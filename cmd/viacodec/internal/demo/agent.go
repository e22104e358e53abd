package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/hostdl/s3store"
	"github.com/viacodec/viacodec/wasm"
)

// The demo's agents and its relay run in processes of their own: the
// demo starts its own binary with the hidden commands "agent" and
// "relay", which speak the frames of proto.go on their standard streams.
//
// Another kind of agent (a wasm guest's, say) is another process that
// speaks the same frames: a flag of "agent" that assembles its peer
// differently, and an entry in agentKinds (demo.go).

// peer is one process's end of the round: a host that serves the batches
// it publishes and downloads what it decodes, and counts what it
// downloaded. Its codec is native, or a wasm guest's (newWasmPeer).
type peer struct {
	*hostdl.Host
	dec     decoder
	publish func(v any, receivers int) ([]byte, waiter, error)
	// upload, when not nil, publishes v by uploading it to the holder of
	// a grant, as a source that cannot be reached does (native peers).
	upload func(v any, g hostdl.UploadGrant, receivers int) ([]byte, waiter, error)
	close  func()
	count  *downloadCounter
}

// decoder and waiter are what an agent needs of a decode mode and of a
// transaction, native or in a wasm guest.
type decoder interface {
	DecodeContext(ctx context.Context, data []byte) (any, error)
}

type waiter interface {
	Wait(ctx context.Context) (core.Outcome, error)
}

// Close closes the peer's host (and its wasm runtime, if any).
func (p *peer) Close() error {
	p.close()
	return nil
}

// newPeer assembles the host of a process of the demo. Every non-empty
// array it encodes goes by reference; progress, if set, sees its client's
// downloads; store, if not empty, is the object store ("s3://BUCKET/PREFIX",
// credentials from the AWS environment) that holds what it publishes.
func newPeer(name string, progress func(ref uuid.UUID, done, total int64), store string) (*peer, error) {
	var st *s3store.Store
	if store != "" {
		var err error
		if st, err = s3store.Open(store, slog.New(slog.DiscardHandler)); err != nil {
			return nil, err
		}
	}
	count := &downloadCounter{done: map[uuid.UUID]int64{}, then: progress}
	h, err := hostdl.NewHost(hostdl.HostOptions{
		Logger:       slog.New(slog.DiscardHandler),
		RefThreshold: 1,
		Client:       hostdl.ClientOptions{Receiver: name, Progress: count.progress},
	})
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		if st != nil {
			st.Close()
		}
		h.Close()
	}
	enc, err := h.EncMode(core.EncOptions{})
	if err != nil {
		closeAll()
		return nil, err
	}
	dec, err := h.DecMode(core.DecOptions{})
	if err != nil {
		closeAll()
		return nil, err
	}
	p := &peer{Host: h, dec: dec, count: count, close: closeAll}
	p.publish = func(v any, receivers int) ([]byte, waiter, error) {
		msg, err := enc.Encode(v)
		if err != nil {
			return nil, nil, err
		}
		if msg.Batch() == nil {
			return nil, nil, errors.New("no array went by reference")
		}
		if st != nil {
			tx, sent, err := st.Publish(h.Context(), h, msg, updateOptions(receivers))
			if err != nil {
				return nil, nil, err
			}
			return sent.Bytes(), tx, nil
		}
		tx, err := h.Publish(msg.Batch(), updateOptions(receivers))
		if err != nil {
			return nil, nil, err
		}
		return msg.Bytes(), tx, nil
	}
	p.upload = uploader(h, func(v any, holder string) (byRef, error) {
		em, err := core.EncOptions{ByRef: true, RefThreshold: 1, Source: holder}.EncMode()
		if err != nil {
			return nil, err
		}
		return em.Encode(v)
	})
	return p, nil
}

// byRef is a message encoded by reference, core's or a guest's.
type byRef interface {
	Bytes() []byte
	Batch() *core.Batch
}

// uploader returns a peer's upload: encode encodes v by reference for the
// grant's holder, and h's client uploads the batch there.
func uploader(h *hostdl.Host, encode func(v any, holder string) (byRef, error)) func(any, hostdl.UploadGrant, int) ([]byte, waiter, error) {
	return func(v any, g hostdl.UploadGrant, receivers int) ([]byte, waiter, error) {
		msg, err := encode(v, g.Holder)
		if err != nil {
			return nil, nil, err
		}
		if msg.Batch() == nil {
			return nil, nil, errors.New("no array went by reference")
		}
		up, err := h.Client().Upload(h.Context(), g, msg.Batch(), updateOptions(receivers))
		if err != nil {
			return nil, nil, err
		}
		return msg.Bytes(), up, nil
	}
}

// newWasmPeer is newPeer with the codec and the transaction table in a wasm
// guest, sandboxed: the guest decodes, plans the downloads, encodes by
// reference and keeps the books of the update's transaction; the host
// downloads, serves the bytes and holds the arrays.
func newWasmPeer(name string, progress func(ref uuid.UUID, done, total int64)) (*peer, error) {
	rt, err := wasm.NewRuntime(wasm.Options{})
	if err != nil {
		return nil, err
	}
	var table *wasm.Table
	count := &downloadCounter{done: map[uuid.UUID]int64{}, then: progress}
	h, err := hostdl.NewHost(hostdl.HostOptions{
		Logger: slog.New(slog.DiscardHandler),
		Client: hostdl.ClientOptions{Receiver: name, Progress: count.progress},
		NewTable: func(o core.TableOptions) (hostdl.Table, error) {
			t, err := rt.NewTable(o)
			table = t
			return t, err
		},
	})
	if err != nil {
		rt.Close()
		return nil, err
	}
	closeAll := func() {
		h.Close()
		rt.Close()
	}
	enc, err := rt.EncMode(core.EncOptions{ByRef: true, RefThreshold: 1, Source: h.Source(), Rand: rand.Reader})
	if err != nil {
		closeAll()
		return nil, err
	}
	dec, err := rt.DecMode(core.DecOptions{Fetcher: h.Client()})
	if err != nil {
		closeAll()
		return nil, err
	}
	p := &peer{Host: h, dec: dec, count: count, close: closeAll}
	p.publish = func(v any, receivers int) ([]byte, waiter, error) {
		msg, err := enc.EncodeContext(h.Context(), v)
		if err != nil {
			return nil, nil, err
		}
		if msg.Batch() == nil {
			return nil, nil, errors.New("no array went by reference")
		}
		tx, err := table.Publish(msg.Batch(), updateOptions(receivers))
		if err != nil {
			return nil, nil, err
		}
		return msg.Bytes(), tx, nil
	}
	// The guest encodes for the holder; the host uploads the arrays it
	// holds.
	p.upload = uploader(h, func(v any, holder string) (byRef, error) {
		em, err := rt.EncMode(core.EncOptions{ByRef: true, RefThreshold: 1, Source: holder, Rand: rand.Reader})
		if err != nil {
			return nil, err
		}
		return em.EncodeContext(h.Context(), v)
	})
	return p, nil
}

// relayBudget is the memory the demo's caching relay may hold pieces in.
const relayBudget = 32 << 20

// updateOptions is how an agent publishes its update for n receivers.
func updateOptions(n int) core.PublishOptions {
	return core.PublishOptions{Receivers: n, Timeout: 2 * time.Minute}
}

// downloadCounter counts the bytes a client downloaded, from its Progress
// reports, and passes the reports on.
type downloadCounter struct {
	mu   sync.Mutex
	done map[uuid.UUID]int64
	then func(ref uuid.UUID, done, total int64)
}

func (c *downloadCounter) progress(ref uuid.UUID, done, total int64) {
	c.mu.Lock()
	c.done[ref] = done
	c.mu.Unlock()
	if c.then != nil {
		c.then(ref, done, total)
	}
}

// take returns the bytes downloaded since the last take.
func (c *downloadCounter) take() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for ref, d := range c.done {
		n += d
		delete(c.done, ref)
	}
	return n
}

func sayHello(out *frameWriter, name, kind string) error {
	return out.write(map[string]any{"op": "hello", "name": name, "kind": kind, "pid": os.Getpid(), "rss": peakRSS()})
}

// serveFrames calls handle with each frame that arrives on standard input,
// until it ends.
func serveFrames(handle func(*fields) error) error {
	in := bufio.NewReader(os.Stdin)
	for {
		f, err := readFrame(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := handle(newFields(f)); err != nil {
			return err
		}
	}
}

// RunAgent is `viacodec agent`, a Go agent. For each task it downloads the
// model straight from the server, takes its training step and answers
// with its update by reference; once the server has downloaded an update,
// it reports the update's outcome. It ends when its input does and its
// updates are delivered.
func RunAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	name := fs.String("name", "agent", "receiver id `NAME` of the agent")
	sandboxed := fs.Bool("wasm", false, "run the codec and the transaction table in a wasm guest")
	store := fs.String("store", "", "publish the updates through the object store `s3://BUCKET/PREFIX`")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	out := newFrameWriter(os.Stdout)
	progress := func(_ uuid.UUID, done, total int64) {
		out.write(map[string]any{"op": "progress", "done": done, "total": total})
	}
	newP, kind := func(n string, pr func(uuid.UUID, int64, int64)) (*peer, error) { return newPeer(n, pr, *store) }, "go"
	if *sandboxed {
		newP, kind = newWasmPeer, "wasm"
	}
	p, err := newP(*name, progress)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := sayHello(out, *name, kind); err != nil {
		return err
	}

	var delivered sync.WaitGroup
	err = serveFrames(func(f *fields) error {
		if op := f.str("op"); op != "task" {
			return fmt.Errorf("unexpected frame %q", op)
		}
		msg := f.bytes("msg")
		if err := f.error(); err != nil {
			return err
		}
		round, tx, err := agentTask(p, *name, msg, out)
		if err != nil {
			return err
		}
		delivered.Go(func() {
			o, err := tx.Wait(p.Context())
			// The update is delivered: its memory is free. Collecting it
			// now keeps the peak at one model, not at one model plus
			// what the collector let pile up.
			debug.FreeOSMemory()
			if err == nil {
				out.write(outcomeFrame(round, o))
			}
		})
		return nil
	})
	// The server has the updates it waited for (it closes the input
	// after their outcomes); closing the host ends any other.
	p.Close()
	delivered.Wait()
	return err
}

// agentTask decodes one task, trains, publishes the update and sends it.
func agentTask(p *peer, name string, msg []byte, out *frameWriter) (int64, waiter, error) {
	start := time.Now()
	v, err := p.dec.DecodeContext(p.Context(), msg)
	if err != nil {
		return 0, nil, err
	}
	elapsed := time.Since(start)
	task, ok := v.(map[string]any)
	if !ok {
		return 0, nil, fmt.Errorf("task is %T, not a map", v)
	}
	f := newFields(task)
	round := f.int("round")
	lr := f.float32("lr")
	target := f.sub("targets").float32(name)
	if err := f.error(); err != nil {
		return 0, nil, fmt.Errorf("task: %w", err)
	}
	m, err := modelOf(task["model"])
	if err != nil {
		return 0, nil, err
	}
	report := map[string]any{
		"round": round, "held": m.bytes(), "lazy": 0, "downloaded": p.count.take(),
		"ns": elapsed.Nanoseconds(), "sha256": digestMap(m.digests()), "rss": peakRSS(),
	}
	update := m.trainInPlace(lr, target)
	body := map[string]any{"agent": name, "round": round, "update": update.body()}
	// In a round across sites the server grants each agent an upload: the
	// agent, which cannot be reached, uploads its update to the server.
	grants, _ := task["grants"].(map[string]any)
	grant, uploaded := grants[name].(string)
	var um []byte
	var tx waiter
	if uploaded && p.upload != nil {
		var g hostdl.UploadGrant
		if err := json.Unmarshal([]byte(grant), &g); err != nil {
			return 0, nil, fmt.Errorf("task: grant: %w", err)
		}
		um, tx, err = p.upload(body, g, 1)
	} else {
		uploaded = false
		um, tx, err = p.publish(body, 1)
	}
	if err != nil {
		return 0, nil, err
	}
	err = out.write(map[string]any{"op": "result", "msg": um, "report": report, "sha256": digestMap(update.digests()), "uploaded": uploaded})
	return round, tx, err
}

// outcomeFrame reports how the transaction of an update ended.
func outcomeFrame(round int64, o core.Outcome) map[string]any {
	served := map[string]any{}
	for _, r := range o.Receivers {
		served[r.ID] = r.Bytes
	}
	return map[string]any{
		"op": "outcome", "round": round, "state": o.State.String(),
		"confirmed": anySlice(o.Confirmed()), "served": served,
	}
}

// RunRelay is `viacodec relay`, a forwarding hop: it decodes each message
// with pass-through on, so that every array stays a lazy ref and nothing
// is downloaded, adds its name, and re-encodes the message, whose refs
// still point at their sources. A forward frame with "cache" set first
// re-points the message's batches at a caching relay (hostdl.Relay) the
// process runs: the agents then download from it, and it fetches each
// piece from the server once.
func RunRelay(args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	name := fs.String("name", "relay", "`NAME` of the relay")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	out := newFrameWriter(os.Stdout)
	// Its host's client would download, if anything asked it to: its
	// count shows that nothing did.
	p, err := newPeer(*name, nil, "")
	if err != nil {
		return err
	}
	defer p.Close()
	dec, err := p.DecMode(core.DecOptions{PassThrough: true})
	if err != nil {
		return err
	}
	if err := sayHello(out, *name, "relay"); err != nil {
		return err
	}
	// The caching relay, started by the first frame that asks for it.
	var cache *hostdl.Relay
	var spill string // its spill directory
	defer func() {
		if cache != nil {
			cache.Close()
			os.RemoveAll(spill)
		}
	}()
	return serveFrames(func(f *fields) error {
		switch op := f.str("op"); {
		case op == "cache-stats" && cache != nil:
			st := cache.Stats()
			return out.write(map[string]any{"op": "cache-stats", "peak": st.PeakBytes, "upstream": st.UpstreamBytes,
				"budget": int64(relayBudget), "served": st.Server.BytesServed})
		case op != "forward":
			return fmt.Errorf("unexpected frame %q", op)
		}
		msg := f.bytes("msg")
		cached, _ := f.m["cache"].(bool)
		if err := f.error(); err != nil {
			return err
		}
		start := time.Now()
		if cached {
			if cache == nil {
				// Pieces beyond the budget, which agents that drift apart
				// still need, wait on disk rather than being fetched again.
				if spill, err = os.MkdirTemp("", "viacodec-relay-"); err != nil {
					return err
				}
				if cache, err = hostdl.NewRelay(hostdl.RelayOptions{Budget: relayBudget, SpillDir: spill, Logger: slog.New(slog.DiscardHandler)}); err != nil {
					os.RemoveAll(spill)
					return err
				}
			}
			// Its batches now point at the caching relay, which fetches
			// each piece from the server once for every agent.
			if msg, err = cache.Forward(msg); err != nil {
				return err
			}
		}
		v, err := dec.DecodeContext(p.Context(), msg)
		if err != nil {
			return err
		}
		held, lazy := cli.ArrayBytes(v)
		round := int64(0)
		if m, ok := v.(map[string]any); ok {
			round, _ = m["round"].(int64)
			m["relay"] = *name
		}
		fwd, err := core.Marshal(v)
		if err != nil {
			return err
		}
		report := map[string]any{
			"round": round, "held": held, "lazy": lazy, "downloaded": p.count.take(),
			"ns": time.Since(start).Nanoseconds(), "sha256": map[string]any{}, "rss": peakRSS(),
		}
		return out.write(map[string]any{"op": "forwarded", "msg": fwd, "report": report})
	})
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func digestMap(d map[string][]byte) map[string]any {
	m := make(map[string]any, len(d))
	for k, v := range d {
		m[k] = v
	}
	return m
}
