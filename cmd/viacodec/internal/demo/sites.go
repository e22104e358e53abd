package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/hostdl"
)

// The round across sites, after the others: the agents cannot be reached
// (the server never dials them), so each uploads its update to the
// server under a grant the task carries; and the model reaches the
// agents through relay-1's cache (hostdl.Relay), which fetches each piece
// from the server once, however many agents ask. It runs on the final
// model and leaves the summary's totals as they were; the summary prints
// its origin egress beside the other rounds'.
//
//	server --task (grants)--> relay-1 [cache] --task--> agents   the model: once from the server
//	server <--update-- relay-1 <--update-- agent                   each update uploaded to the server

// sitesStats is what the round across sites measured.
type sitesStats struct {
	egress    float64 // the server's bytes sent for the task, per model
	peak      int64   // the most relay-1's cache held at once
	budget    int64
	upstream  int64 // bytes relay-1 fetched from the server
	uploaded  int   // agents that uploaded
	confirmed []string
}

// sitesRound runs the round across sites on model m.
func (f *federation) sitesRound(ctx context.Context, r int, m model) error {
	f.out.Printf("\nacross sites (round %d, on the final model; not in the totals below): the agents cannot be reached and upload\n"+
		"their updates to the server; the model reaches them through relay-1's cache, which fetches it from the server once\n", r)
	grants, targets := map[string]any{}, map[string]any{}
	var ts []float32
	for _, a := range f.cfg.agents {
		g, err := f.server.GrantUpload(hostdl.UploadOptions{MaxBytes: m.bytes(), Timeout: 2 * time.Minute})
		if err != nil {
			return err
		}
		j, err := json.Marshal(g)
		if err != nil {
			return err
		}
		grants[a.name] = string(j)
		targets[a.name] = a.target
		ts = append(ts, a.target)
	}
	// Grants are capabilities: in the demo one task carries every agent's;
	// a real server sends each agent its own.
	task, tx, err := f.server.publish(map[string]any{"round": r, "lr": f.cfg.lr, "targets": targets, "model": m.body(), "grants": grants}, len(f.agents))
	if err != nil {
		return err
	}
	before := f.server.Stats().BytesServed
	fwd, err := f.relayForward(ctx, map[string]any{"op": "forward", "msg": task, "cache": true})
	if err != nil {
		return err
	}
	for _, a := range f.agents {
		l := fmt.Sprintf("across sites: %s <- relay-1's cache", a.name)
		fn := func(done, total int64) { f.out.Update(l, l, done, total) }
		a.onProgress.Store(&fn)
		if err := a.send(map[string]any{"op": "task", "msg": fwd}); err != nil {
			return err
		}
	}
	results := make([]agentResult, len(f.agents))
	uploaded := make([]bool, len(f.agents))
	for i, a := range f.agents {
		fl, err := a.recv(ctx, "result")
		f.out.End(fmt.Sprintf("across sites: %s <- relay-1's cache", a.name))
		if err != nil {
			return err
		}
		results[i] = agentResult{msg: fl.bytes("msg"), report: readReport(fl), sha256: fl.digests("sha256")}
		uploaded[i], _ = fl.m["uploaded"].(bool)
		if err := fl.error(); err != nil {
			return a.failure(err)
		}
	}
	out, err := tx.Wait(ctx)
	if err != nil {
		return err
	}
	if _, err := checkOutcome("the task across sites", out, f.agentNames()); err != nil {
		return err
	}
	st := sitesStats{egress: float64(f.server.Stats().BytesServed-before) / float64(m.bytes()), confirmed: out.Confirmed()}

	// The checks of this round are not counted in the summary's totals.
	checked := f.hashesChecked
	defer func() { f.hashesChecked = checked }()
	sources := m.digests()
	var avg averager
	for i, a := range f.agents {
		rep := results[i].report
		taskSHA, err := f.checkDigests(a.name, rep.sha256, sources)
		if err != nil {
			return err
		}
		fwd, err := f.relayForward(ctx, map[string]any{"op": "forward", "msg": results[i].msg})
		if err != nil {
			return err
		}
		v, err := f.server.dec.DecodeContext(ctx, fwd)
		if err != nil {
			return fmt.Errorf("%s's update across sites: %w", a.name, err)
		}
		update, err := updateOf(v, a.name, r)
		if err != nil {
			return err
		}
		updSHA, err := f.checkDigests("the server", update.digests(), results[i].sha256)
		if err != nil {
			return fmt.Errorf("%s's update across sites: %w", a.name, err)
		}
		if err := avg.add(update); err != nil {
			return err
		}
		ofl, err := a.recv(ctx, "outcome")
		if err != nil {
			return err
		}
		if _, err := checkAgentOutcome(a.name, ofl); err != nil {
			return err
		}
		how := "uploaded to the server (the server read it from its own table)"
		if uploaded[i] {
			st.uploaded++
		} else {
			how = "served by the agent (it did not upload)"
		}
		f.out.Printf("  %-12s model %s from relay-1's cache, %s; update %s %s, %s\n", a.name+":",
			cli.FormatBytes(rep.held), taskSHA, cli.FormatBytes(update.bytes()), how, updSHA)
	}
	if diff := m.checkAverage(avg.mean(), f.cfg.lr, ts); diff != "" {
		return fmt.Errorf("across sites, the average of the updates differs from the one the server expects: %s", diff)
	}
	if err := f.relay.send(map[string]any{"op": "cache-stats"}); err != nil {
		return err
	}
	cs, err := f.relay.recv(ctx, "cache-stats")
	if err != nil {
		return err
	}
	st.peak, st.budget, st.upstream = cs.int("peak"), cs.int("budget"), cs.int("upstream")
	if err := cs.error(); err != nil {
		return f.relay.failure(err)
	}
	f.sites = &st
	f.out.Printf("  origin egress: %.2f× the model; relay-1 fetched %s from the server for %s and held at most %s (budget %s)\n",
		st.egress, cli.FormatBytes(st.upstream), cli.Plural(len(f.agents), "agent"), cli.FormatBytes(st.peak), cli.FormatBytes(st.budget))
	f.out.Printf("  task confirmed by %s through relay-1, counted at the server under their names; %d of %d updates uploaded\n",
		strings.Join(st.confirmed, ", "), st.uploaded, len(f.agents))
	return nil
}

// relayForward has relay-1 forward a frame's message and returns what it
// forwarded, outside the summary's counts.
func (f *federation) relayForward(ctx context.Context, frame map[string]any) ([]byte, error) {
	if err := f.relay.send(frame); err != nil {
		return nil, err
	}
	fl, err := f.relay.recv(ctx, "forwarded")
	if err != nil {
		return nil, err
	}
	fwd := fl.bytes("msg")
	if err := fl.error(); err != nil {
		return nil, f.relay.failure(err)
	}
	return fwd, nil
}
