package demo

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
)

// The federated rounds of the demo, on loopback. This process is the
// server; a relay and the agents are processes of their own (agent.go,
// procs.go). In each round:
//
//	server --task--> relay --task--> agents     the model by reference: each
//	                                            agent downloads it from the server
//	server <--update-- relay <--update-- agent  each update by reference: the
//	                                            server downloads it from the agent
//
// Messages travel over the processes' standard streams, through the
// server, which stands in for a message bus; array bytes travel only by
// HTTP, straight from the process that holds them to the one that asked.

// fedConfig is what the federated rounds run.
type fedConfig struct {
	size, tensors, rounds int
	agents                []agentSpec
	lr                    float32
	store                 string // an object store that holds the server's model, if not empty
}

// agentSpec is one agent of the rounds.
type agentSpec struct {
	name   string
	kind   agentKind
	target float32 // where its training step moves the weights
}

// federation is the server's view of the running rounds.
type federation struct {
	cfg    fedConfig
	out    *cli.Progress
	server *peer
	label  atomic.Pointer[string] // of the server's download in progress
	relay  *proc
	agents []*proc

	// Totals for the summary.
	moved, messages int64
	forwards        int
	relayRSS        int64
	peakRSS         map[string]int64
	hashesChecked   int
	egress          []float64   // per round: the server's bytes sent for the task, per model
	sites           *sitesStats // the round across sites (sites.go)
}

// hop is a row of a round's table: one message from one process to
// another, and the array bytes its receiver downloaded for it.
type hop struct {
	from, to string
	msg      int    // message bytes
	moved    int64  // array bytes the receiver downloaded, as their source counted
	source   string // where they came from
	held     string // array bytes the receiver holds
	took     time.Duration
	sha      string
	rss      int64
}

// runRounds runs cfg's rounds and prints their hops on out.
func runRounds(ctx context.Context, cfg fedConfig, out *cli.Progress) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &federation{cfg: cfg, out: out, peakRSS: map[string]int64{}}
	resetPeakRSS() // the server's peak is that of the rounds
	var err error
	f.server, err = newPeer("server", func(_ uuid.UUID, done, total int64) {
		if l := f.label.Load(); l != nil {
			out.Update(*l, *l, done, total)
		}
	}, cfg.store)
	if err != nil {
		return err
	}
	defer f.server.Close()
	if err := f.start(ctx); err != nil {
		return err
	}
	defer f.killAll()

	start := time.Now()
	m := initialModel(cfg.size, cfg.tensors)
	first := m.mean()
	for r := 1; r <= cfg.rounds; r++ {
		if m, err = f.round(ctx, r, m); err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
	}
	took := time.Since(start)
	if err := f.sitesRound(ctx, cfg.rounds+1, m); err != nil {
		return fmt.Errorf("the round across sites: %w", err)
	}
	for _, p := range append([]*proc{f.relay}, f.agents...) {
		if err := p.stop(30 * time.Second); err != nil {
			return err
		}
	}
	f.summary(took, first, m)
	return nil
}

// start starts the relay and the agents, all at once, and prints who is
// who.
func (f *federation) start(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	procs := make([]*proc, len(f.cfg.agents)+1)
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			if i == 0 {
				procs[i], errs[i] = startProc(ctx, relayKind(self), "relay-1")
			} else {
				a := f.cfg.agents[i-1]
				procs[i], errs[i] = startProc(ctx, a.kind, a.name)
			}
		})
	}
	wg.Wait()
	f.relay, f.agents = procs[0], procs[1:]
	for _, err := range errs {
		if err != nil {
			f.killAll()
			return err
		}
	}
	f.out.Printf("server    this process (pid %d), serving at %s\n", os.Getpid(), f.server.Source())
	f.out.Printf("relay-1   relay (pid %d): decodes with pass-through, forwards, downloads nothing\n", f.relay.pid)
	for i, a := range f.agents {
		f.out.Printf("%-9s %s agent (pid %d), training target %g\n", a.name, a.kind, a.pid, f.cfg.agents[i].target)
	}
	f.out.Printf("learning rate %g; each round: server -> relay-1 -> agents, then each update agent -> relay-1 -> server\n", f.cfg.lr)
	return nil
}

// killAll ends the processes still running.
func (f *federation) killAll() {
	for _, p := range append([]*proc{f.relay}, f.agents...) {
		if p != nil {
			p.kill()
		}
	}
}

// report is what a process said about a message it received.
type report struct {
	held, lazy, downloaded, rss int64
	took                        time.Duration
	sha256                      map[string][]byte
}

func readReport(f *fields) report {
	r := f.sub("report")
	return report{
		held: r.int("held"), lazy: r.int("lazy"), downloaded: r.int("downloaded"), rss: r.int("rss"),
		took: time.Duration(r.int("ns")), sha256: r.digests("sha256"),
	}
}

// forward has the relay forward msg and checks that it held and
// downloaded no array byte.
func (f *federation) forward(ctx context.Context, msg []byte, from string, arrays int) ([]byte, hop, error) {
	if err := f.relay.send(map[string]any{"op": "forward", "msg": msg}); err != nil {
		return nil, hop{}, err
	}
	fl, err := f.relay.recv(ctx, "forwarded")
	if err != nil {
		return nil, hop{}, err
	}
	fwd, rep := fl.bytes("msg"), readReport(fl)
	if err := fl.error(); err != nil {
		return nil, hop{}, f.relay.failure(err)
	}
	switch {
	case rep.held != 0 || rep.downloaded != 0:
		return nil, hop{}, fmt.Errorf("relay-1 holds %d array bytes and downloaded %d: it should hold and download none", rep.held, rep.downloaded)
	case rep.lazy != int64(arrays):
		return nil, hop{}, fmt.Errorf("relay-1 holds %d lazy refs, want %d", rep.lazy, arrays)
	}
	f.relayRSS = max(f.relayRSS, rep.rss)
	f.forwards++
	f.messages += int64(len(msg) + len(fwd))
	return fwd, hop{
		from: from, to: "relay-1", msg: len(msg), held: fmt.Sprintf("0 B, %d lazy refs", rep.lazy),
		took: rep.took, sha: "no arrays", rss: rep.rss,
	}, nil
}

// checkDigests compares the digests a receiver computed with the
// source's.
func (f *federation) checkDigests(who string, got, want map[string][]byte) (string, error) {
	for name, w := range want {
		f.hashesChecked++
		g, ok := got[name]
		if !ok {
			return "", fmt.Errorf("%s has no SHA-256 of %s", who, name)
		}
		if !bytes.Equal(g, w) {
			return "", fmt.Errorf("%s's copy of %s differs from its source's: SHA-256 %x… against %x…", who, name, g[:6], w[:6])
		}
	}
	if len(got) != len(want) {
		return "", fmt.Errorf("%s reports %d arrays, want %d", who, len(got), len(want))
	}
	return fmt.Sprintf("%d/%d match", len(want), len(want)), nil
}

// agentResult is an agent's answer to a task.
type agentResult struct {
	msg    []byte
	report report
	sha256 map[string][]byte // of the update, at the agent
}

// round runs round r on model m and returns the average of the updates.
func (f *federation) round(ctx context.Context, r int, m model) (model, error) {
	f.out.Printf("\nround %d of %d: model %s in %d float32 tensors, mean %+.6f\n", r, f.cfg.rounds, cli.FormatBytes(m.bytes()), len(m), m.mean())
	var hops []hop
	targets := map[string]any{}
	var ts []float32
	for _, a := range f.cfg.agents {
		targets[a.name] = a.target
		ts = append(ts, a.target)
	}
	task, tx, err := f.server.publish(map[string]any{"round": r, "lr": f.cfg.lr, "targets": targets, "model": m.body()}, len(f.agents))
	if err != nil {
		return nil, err
	}
	sources := m.digests()
	before := f.server.Stats().BytesServed

	// The task: server -> relay -> agents, which download from the server.
	fwd, h, err := f.forward(ctx, task, "server", len(m))
	if err != nil {
		return nil, err
	}
	hops = append(hops, h)
	labels := make([]string, len(f.agents))
	for i, a := range f.agents {
		labels[i] = fmt.Sprintf("round %d: %s <- server", r, a.name)
		l := labels[i]
		fn := func(done, total int64) { f.out.Update(l, l, done, total) }
		a.onProgress.Store(&fn)
		if err := a.send(map[string]any{"op": "task", "msg": fwd}); err != nil {
			return nil, err
		}
	}
	results := make([]agentResult, len(f.agents))
	for i, a := range f.agents {
		fl, err := a.recv(ctx, "result")
		f.out.End(labels[i])
		if err != nil {
			return nil, err
		}
		res := agentResult{msg: fl.bytes("msg"), report: readReport(fl), sha256: fl.digests("sha256")}
		if err := fl.error(); err != nil {
			return nil, a.failure(err)
		}
		results[i] = res
	}
	out, err := tx.Wait(ctx)
	if err != nil {
		return nil, err
	}
	served, err := checkOutcome("the task", out, f.agentNames())
	if err != nil {
		return nil, err
	}
	f.egress = append(f.egress, float64(f.server.Stats().BytesServed-before)/float64(m.bytes()))
	for i, a := range f.agents {
		rep := results[i].report
		sha, err := f.checkDigests(a.name, rep.sha256, sources)
		if err != nil {
			return nil, err
		}
		if rep.held != m.bytes() || (rep.downloaded >= 0 && rep.downloaded != rep.held) {
			return nil, fmt.Errorf("%s holds %d array bytes and downloaded %d, want %d", a.name, rep.held, rep.downloaded, m.bytes())
		}
		hops = append(hops, hop{
			from: "relay-1", to: a.name, msg: len(fwd), moved: served[a.name], source: "server",
			held: cli.FormatBytes(rep.held), took: rep.took, sha: sha, rss: rep.rss,
		})
		f.moved += served[a.name]
		f.peakRSS[a.name] = max(f.peakRSS[a.name], rep.rss)
	}

	// The updates: agent -> relay -> server, which downloads from the agent.
	var avg averager
	for i, a := range f.agents {
		fwd, h, err := f.forward(ctx, results[i].msg, a.name, len(m))
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
		label := fmt.Sprintf("round %d: server <- %s", r, a.name)
		f.label.Store(&label)
		start := time.Now()
		v, err := f.server.dec.DecodeContext(ctx, fwd)
		took := time.Since(start)
		f.out.End(label)
		if err != nil {
			return nil, fmt.Errorf("%s's update: %w", a.name, err)
		}
		update, err := updateOf(v, a.name, r)
		if err != nil {
			return nil, err
		}
		sha, err := f.checkDigests("the server", update.digests(), results[i].sha256)
		if err != nil {
			return nil, fmt.Errorf("%s's update: %w", a.name, err)
		}
		if err := avg.add(update); err != nil {
			return nil, fmt.Errorf("%s's update: %w", a.name, err)
		}
		held := update.bytes()
		debug.FreeOSMemory() // the update is summed: hold one at a time
		fl, err := a.recv(ctx, "outcome")
		if err != nil {
			return nil, err
		}
		served, err := checkAgentOutcome(a.name, fl)
		if err != nil {
			return nil, err
		}
		rss := peakRSS()
		hops = append(hops, hop{
			from: "relay-1", to: "server", msg: len(fwd), moved: served, source: a.name,
			held: cli.FormatBytes(held), took: took, sha: sha, rss: rss,
		})
		f.moved += served
		f.peakRSS["server"] = max(f.peakRSS["server"], rss)
	}
	avgModel := avg.mean()
	if diff := m.checkAverage(avgModel, f.cfg.lr, ts); diff != "" {
		return nil, fmt.Errorf("the average of the updates differs from the one the server expects: %s", diff)
	}
	f.printHops(hops)
	f.out.Printf("  average of %d updates: bit-exact to the server's own computation; mean %+.6f -> %+.6f\n", len(f.agents), m.mean(), avgModel.mean())
	f.out.Printf("  task confirmed by %s (relay-1 never downloaded); each update confirmed by the server\n", strings.Join(f.agentNames(), ", "))
	return avgModel, nil
}

func (f *federation) agentNames() []string {
	names := make([]string, len(f.agents))
	for i, a := range f.agents {
		names[i] = a.name
	}
	return names
}

// checkOutcome checks that a transaction completed with the receivers
// want confirmed, and no other, and returns the bytes served to each.
func checkOutcome(what string, out core.Outcome, want []string) (map[string]int64, error) {
	served := map[string]int64{}
	var ids []string
	for _, r := range out.Receivers {
		served[r.ID] = r.Bytes
		ids = append(ids, r.ID)
	}
	got := out.Confirmed()
	slices.Sort(got)
	slices.Sort(ids)
	w := slices.Sorted(slices.Values(want))
	if out.State != core.StateCompleted || !slices.Equal(got, w) || !slices.Equal(ids, w) {
		return nil, fmt.Errorf("%s ended %s with receivers %v, confirmed by %v; want completed, confirmed by %v alone", what, out.State, ids, got, w)
	}
	return served, nil
}

// checkAgentOutcome checks the outcome an agent reported for its update,
// and returns the bytes it served the server.
func checkAgentOutcome(name string, fl *fields) (int64, error) {
	state, confirmed := fl.str("state"), fl.strings("confirmed")
	served := fl.sub("served")
	n := served.int("server")
	if err := fl.error(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if state != core.StateCompleted.String() || !slices.Equal(confirmed, []string{"server"}) || len(served.m) != 1 {
		return 0, fmt.Errorf("%s's update ended %s, confirmed by %v, served to %d receivers; want completed, confirmed by the server alone", name, state, confirmed, len(served.m))
	}
	return n, nil
}

// updateOf reads an agent's update.
func updateOf(v any, name string, round int) (model, error) {
	body, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s's update is %T, not a map", name, v)
	}
	fl := newFields(body)
	agent, r := fl.str("agent"), fl.int("round")
	if err := fl.error(); err != nil {
		return nil, fmt.Errorf("%s's update: %w", name, err)
	}
	if agent != name || r != int64(round) {
		return nil, fmt.Errorf("%s sent the update of %s for round %d", name, agent, r)
	}
	return modelOf(body["update"])
}

// printHops prints a round's hops as a table.
func (f *federation) printHops(hops []hop) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  HOP\tMESSAGE\tMOVED\tFROM\tHELD\tTIME\tRATE\tSHA-256\tPEAK RSS")
	for _, h := range hops {
		rate, source := "-", "-"
		if h.moved > 0 {
			rate = fmt.Sprintf("%.0f MiB/s", float64(h.moved)/(1<<20)/h.took.Seconds())
			source = h.source
		}
		fmt.Fprintf(w, "  %s -> %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.from, h.to, cli.FormatBytes(int64(h.msg)),
			cli.FormatBytes(h.moved), source, h.held, h.took.Round(10*time.Microsecond), rate, h.sha, cli.FormatBytes(h.rss))
	}
	w.Flush()
	f.out.Printf("%s", b.String())
}

// summary prints what the rounds did.
func (f *federation) summary(took time.Duration, first float64, m model) {
	kinds := map[string]int{}
	var order []string
	for _, a := range f.agents {
		if kinds[a.kind] == 0 {
			order = append(order, a.kind)
		}
		kinds[a.kind]++
	}
	var ks []string
	for _, k := range order {
		ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	f.peakRSS["server"] = max(f.peakRSS["server"], peakRSS())
	f.out.Printf("\nsummary: %s in %s; %s (%s) took part in every round\n", cli.Plural(f.cfg.rounds, "round"), took.Round(time.Millisecond), cli.Plural(len(f.agents), "agent"), strings.Join(ks, ", "))
	f.out.Printf("  moved: %s by HTTP, straight from the process that held them; messages: %s through relay-1\n", cli.FormatBytes(f.moved), cli.FormatBytes(f.messages))
	f.out.Printf("  checksums: %d of %d arrays match (SHA-256 at source and receiver)\n", f.hashesChecked, f.hashesChecked)
	f.out.Printf("  relay-1: held 0 array bytes and downloaded 0 B in %d forwards; peak RSS %s, %+.1f MiB since it started\n",
		f.forwards, cli.FormatBytes(f.relayRSS), float64(f.relayRSS-f.relay.startRSS)/(1<<20))
	rss := []string{"server " + cli.FormatBytes(f.peakRSS["server"]), "relay-1 " + cli.FormatBytes(f.relayRSS)}
	for _, a := range f.agents {
		rss = append(rss, a.name+" "+cli.FormatBytes(f.peakRSS[a.name]))
	}
	f.out.Printf("  peak RSS: %s\n", strings.Join(rss, ", "))
	for i, e := range f.egress {
		if f.cfg.store != "" {
			f.out.Printf("  round %d: origin egress: %.2f× the model served, plus one upload to the store\n", i+1, e)
			continue
		}
		f.out.Printf("  round %d: origin egress: %.2f× the model (every agent downloads from the server)\n", i+1, e)
	}
	if f.cfg.store != "" {
		f.out.Printf("  the server's model and the Go agents' updates went through %s: each publisher uploaded once, the receivers read from the store\n", f.cfg.store)
	}
	if st := f.sites; st != nil {
		f.out.Printf("  across sites: origin egress: %.2f× the model (through relay-1's cache); relay-1's cache peak %s of its %s budget\n",
			st.egress, cli.FormatBytes(st.peak), cli.FormatBytes(st.budget))
	}
	f.out.Printf("  model mean %+.6f -> %+.6f; final model sha256 %s\n", first, m.mean(), hex.EncodeToString(m.digest()))
}
