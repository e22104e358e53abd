package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// peer is one process of the round: a host that serves the batches it
// publishes and downloads from others, with its encoder and decoder.
type peer struct {
	*hostdl.Host
	enc *core.EncMode
	dec *core.DecMode
}

func newPeer(name string) (*peer, error) {
	h, err := hostdl.NewHost(hostdl.HostOptions{
		Logger: slog.New(slog.DiscardHandler),
		Client: hostdl.ClientOptions{Receiver: name},
	})
	if err != nil {
		return nil, err
	}
	enc, err := h.EncMode(core.EncOptions{})
	if err != nil {
		h.Close()
		return nil, err
	}
	dec, err := h.DecMode(core.DecOptions{})
	if err != nil {
		h.Close()
		return nil, err
	}
	return &peer{Host: h, enc: enc, dec: dec}, nil
}

// send encodes v by reference and publishes its batch for n receivers. It
// fails when nothing went by reference: the round's arrays all should.
func (p *peer) send(v any, receivers int) ([]byte, *core.Transaction, error) {
	msg, err := p.enc.Encode(v)
	if err != nil {
		return nil, nil, err
	}
	tx, err := p.Publish(msg.Batch(), core.PublishOptions{Receivers: receivers})
	if err != nil {
		return nil, nil, err
	}
	return msg.Bytes(), tx, nil
}

// runRound runs one federated round on loopback: the server sends the model
// by reference through a pass-through relay to the agents, which download it
// straight from the server and send their updates back by reference.
func runRound(model map[string]any, total, agents int, python []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	server, err := newPeer("server")
	if err != nil {
		return err
	}
	defer server.Close()
	relay, err := core.DecOptions{PassThrough: true}.DecMode()
	if err != nil {
		return err
	}

	receivers := agents
	if python != nil {
		receivers++
	}
	task, tx, err := server.send(map[string]any{"round": 1, "model": model}, receivers)
	if err != nil {
		return err
	}
	fmt.Printf("server: task message %d bytes for %.1f MiB of weights, served at %s\n", len(task), mib(total), server.Source())

	// The relay forwards without downloading: every array stays a lazy ref.
	fwd, err := relay.Decode(task)
	if err != nil {
		return err
	}
	lazy := 0
	for _, v := range fwd.(map[string]any)["model"].(map[string]any) {
		if _, ok := v.(*core.LazyRef); ok {
			lazy++
		}
	}
	fwd.(map[string]any)["relay"] = "relay-1"
	forwarded, err := core.Marshal(fwd)
	if err != nil {
		return err
	}
	fmt.Printf("relay: forwarded %d bytes holding %d lazy refs and no array bytes\n", len(forwarded), lazy)

	// Each agent downloads from the server, checks the model and answers
	// with an update of its own, by reference.
	type result struct {
		msg []byte
		tx  *core.Transaction
		err error
	}
	results := make(chan result, agents)
	start := time.Now()
	var pyDone chan error
	if python != nil {
		pyDone = make(chan error, 1)
		go func() { pyDone <- runPythonAgent(ctx, python, forwarded, model, server) }()
	}
	for i := range agents {
		go func() {
			msg, tx, err := runAgent(fmt.Sprintf("agent-%d", i+1), forwarded, model)
			results <- result{msg, tx, err}
		}()
	}
	var updates []result
	for range agents {
		r := <-results
		if r.err != nil {
			return r.err
		}
		updates = append(updates, r)
	}
	elapsed := time.Since(start)
	out, err := tx.Wait(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("agents: %d downloaded %.1f MiB each in %v (%.0f MiB/s aggregate), bit-exact\n",
		agents, mib(total), elapsed.Round(time.Millisecond), mib(total*agents)/elapsed.Seconds())
	if pyDone != nil {
		if err := <-pyDone; err != nil {
			return err
		}
	}
	fmt.Printf("server: transaction %s, confirmed by %v\n", out.State, out.Confirmed())

	// The server collects the updates from the agents.
	for _, u := range updates {
		v, err := server.dec.DecodeContext(ctx, u.msg)
		if err != nil {
			return err
		}
		m := v.(map[string]any)
		if _, ok := m["update"].(*core.Array); !ok {
			return fmt.Errorf("update from %v is not an array", m["agent"])
		}
		o, err := u.tx.Wait(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("server: update from %v downloaded; its transaction %s\n", m["agent"], o.State)
	}
	return nil
}

// runAgent downloads the task, verifies it against the model the server
// sent, and returns its update encoded by reference and published.
func runAgent(name string, task []byte, want map[string]any) ([]byte, *core.Transaction, error) {
	p, err := newPeer(name)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) ([]byte, *core.Transaction, error) {
		p.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	v, err := p.dec.Decode(task)
	if err != nil {
		return fail(err)
	}
	if err := verify(want, v); err != nil {
		return fail(err)
	}
	update := make([]float32, 256<<10)
	for i := range update {
		update[i] = float32(i) * 1e-6
	}
	a, err := core.ArrayOf(nil, update)
	if err != nil {
		return fail(err)
	}
	msg, tx, err := p.send(map[string]any{"agent": name, "update": a}, 1)
	if err != nil {
		return fail(err)
	}
	// The agent's host must outlive the server's download of the update;
	// its Close lets the answer to the receipt arrive.
	go func() {
		tx.Wait(context.Background())
		p.Close()
	}()
	return msg, tx, nil
}

// runPythonAgent runs bindings/python/examples/fl_agent.py: it sends the
// task on stdin, reads the agent's answer from stdout, downloads the update
// from the agent's own host and checks the digest of the model it got.
func runPythonAgent(ctx context.Context, python []string, task []byte, model map[string]any, server *peer) error {
	cmd := exec.CommandContext(ctx, python[0], append(python[1:], "python-agent")...)
	cmd.Stderr = os.Stderr
	var in bytes.Buffer
	in.Write(binary.BigEndian.AppendUint64(nil, uint64(len(task))))
	in.Write(task)
	cmd.Stdin = &in
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("python agent: %w", err)
	}
	defer cmd.Wait()
	var n [8]byte
	if _, err := io.ReadFull(out, n[:]); err != nil {
		return fmt.Errorf("python agent: no answer: %w", err)
	}
	msg := make([]byte, binary.BigEndian.Uint64(n[:]))
	if _, err := io.ReadFull(out, msg); err != nil {
		return fmt.Errorf("python agent: %w", err)
	}
	v, err := server.dec.DecodeContext(ctx, msg)
	if err != nil {
		return fmt.Errorf("python agent's update: %w", err)
	}
	answer := v.(map[string]any)
	if _, ok := answer["update"].(*core.Array); !ok {
		return fmt.Errorf("python agent's update is not an array")
	}
	if !bytes.Equal(answer["digest"].([]byte), modelDigest(model)) {
		return fmt.Errorf("python agent's model differs from the server's")
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("python agent: %w", err)
	}
	fmt.Println("server: python agent's model digest matches; its update downloaded")
	return nil
}

// modelDigest is SHA-256 over the tensors' names and bytes, in name order,
// as the Python agent computes it.
func modelDigest(model map[string]any) []byte {
	names := make([]string, 0, len(model))
	for k := range model {
		names = append(names, k)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write(model[k].(*core.Array).Data)
	}
	return h.Sum(nil)
}
