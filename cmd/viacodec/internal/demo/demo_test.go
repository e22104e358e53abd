package demo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cmdtest"
	"github.com/viacodec/viacodec/internal/weedtest"
)

// The demo at a small size: 8 MiB in 4 tensors, 2 rounds, 2 Go agents and
// the default wasm agent. (bindings/python/tests/test_demo.py runs it with
// the Python agent too.)
const (
	demoMiB     = 8
	demoTensors = 4
	demoRounds  = 2
	demoAgents  = 2
)

// TestMain plays a faulty agent when faultEnv says so; otherwise it
// builds the command, which the tests run as users do.
func TestMain(m *testing.M) {
	if fault := os.Getenv(faultEnv); fault != "" {
		if err := faultyAgent(fault, os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	cmdtest.Main(m)
}

var viacodec = cmdtest.Run

func demoArgs(extra ...string) []string {
	return append([]string{"demo", "-size", strconv.Itoa(demoMiB), "-tensors", strconv.Itoa(demoTensors),
		"-rounds", strconv.Itoa(demoRounds), "-agents", strconv.Itoa(demoAgents), "-timeout", "2m"}, extra...)
}

func TestDemo(t *testing.T) {
	out := viacodec(t, t.TempDir(), nil, demoArgs()...).OK(t).Stdout
	t.Log("\n" + out)
	checkDemoOutput(t, out, map[string]int{"go": demoAgents, "wasm": 1})
	assertNoneLeft(t)
}

// assertNoneLeft checks that no process of the demo outlived it: no
// agent or relay of this test's command, no faulty agent.
func assertNoneLeft(t *testing.T) {
	t.Helper()
	self, _ := os.Executable()
	for i := 0; ; i++ {
		var left []string
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			data, err := os.ReadFile(p)
			if err != nil || p == fmt.Sprintf("/proc/%d/cmdline", os.Getpid()) {
				continue
			}
			args := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
			if len(args) > 1 && (args[0] == cmdtest.Path && (args[1] == "agent" || args[1] == "relay") || args[0] == self) {
				left = append(left, strings.Join(args, " "))
			}
		}
		if len(left) == 0 {
			return
		}
		if i == 250 {
			t.Fatalf("processes outlived the demo: %q", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkDemoOutput checks what the demo printed: every hop's checksums, a
// relay that held and downloaded nothing, every agent kind in every round,
// and an average that a computation of its own gives too.
func checkDemoOutput(t *testing.T, out string, kinds map[string]int) {
	t.Helper()
	agents := 0
	var ks []string
	for _, k := range []string{"go", "wasm", "python"} {
		if kinds[k] > 0 {
			agents += kinds[k]
			ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
		}
	}
	must := func(pattern string) []string {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no match for %q in the output", pattern)
		}
		return m
	}
	must(fmt.Sprintf(`(?m)^summary: %d rounds in \S+; %d agents \(%s\) took part in every round$`, demoRounds, agents, regexp.QuoteMeta(strings.Join(ks, ", "))))
	arrays := demoRounds * agents * demoTensors * 2 // the model to each agent, each update to the server
	must(fmt.Sprintf(`(?m)^  checksums: %d of %d arrays match \(SHA-256 at source and receiver\)$`, arrays, arrays))

	// The relay: no array byte held or downloaded, no memory to speak of.
	m := must(fmt.Sprintf(`(?m)^  relay-1: held 0 array bytes and downloaded 0 B in %d forwards; peak RSS \S+ MiB, ([+-][0-9.]+) MiB since it started$`,
		demoRounds*(1+agents)))
	if growth, _ := strconv.ParseFloat(m[1], 64); growth > demoMiB/2 {
		t.Errorf("the relay's peak RSS grew by %v MiB: it held array bytes", growth)
	}

	// Every hop of every round: the relay moved nothing; each agent and
	// the server moved the whole model and checked every digest.
	rows := regexp.MustCompile(`(?m)^  (\S+) -> (\S+)\s+\S+ \S+\s+(\S+ \S+)\s+(\S+)\s+(.+?)\s{2,}\S+\s+\S+(?: MiB/s)?\s+(no arrays|\d+/\d+ match)\s+\S+ \S+$`).FindAllStringSubmatch(out, -1)
	if want := demoRounds * (1 + 3*agents); len(rows) != want {
		t.Fatalf("%d hops in the output, want %d", len(rows), want)
	}
	model := fmt.Sprintf("%d.0 MiB", demoMiB)
	match := fmt.Sprintf("%d/%d match", demoTensors, demoTensors)
	seen := map[string]int{}
	for _, r := range rows {
		from, to, moved, source, held, sha := r[1], r[2], r[3], r[4], r[5], r[6]
		switch {
		case to == "relay-1":
			if moved != "0 B" || source != "-" || held != fmt.Sprintf("0 B, %d lazy refs", demoTensors) || sha != "no arrays" {
				t.Errorf("relay hop %q", r[0])
			}
		case to == "server":
			if from != "relay-1" || moved != model || held != model || sha != match {
				t.Errorf("update hop %q", r[0])
			}
			seen["update from "+source]++
		default:
			if from != "relay-1" || moved != model || source != "server" || held != model || sha != match {
				t.Errorf("task hop %q", r[0])
			}
			seen["task to "+to]++
		}
	}
	for name, n := range seen {
		if n != demoRounds {
			t.Errorf("%s: %d rounds, want %d", name, n, demoRounds)
		}
	}
	if len(seen) != 2*agents {
		t.Errorf("hops of %d agents, want %d: %v", len(seen)/2, agents, seen)
	}
	if n := strings.Count(out, fmt.Sprintf("average of %d updates: bit-exact to the server's own computation", agents)); n != demoRounds {
		t.Errorf("%d averages checked, want %d", n, demoRounds)
	}

	// Origin egress: a copy per agent in every round; in the round across
	// sites one copy, through relay-1's cache, which holds at most its
	// budget, and every agent uploads its update.
	for r := 1; r <= demoRounds; r++ {
		must(fmt.Sprintf(`(?m)^  round %d: origin egress: %d\.00× the model \(every agent downloads from the server\)$`, r, agents))
	}
	m = must(`(?m)^  across sites: origin egress: ([0-9.]+)× the model \(through relay-1's cache\); relay-1's cache peak (\S+) MiB of its 32\.0 MiB budget$`)
	if e, _ := strconv.ParseFloat(m[1], 64); e < 1 || e > 1.05 {
		t.Errorf("across sites the origin sent %v× the model, want about one copy", e)
	}
	if peak, _ := strconv.ParseFloat(m[2], 64); peak > 32 {
		t.Errorf("relay-1's cache held %v MiB, over its budget", peak)
	}
	must(fmt.Sprintf(`(?m)^  task confirmed by \S.* through relay-1, counted at the server under their names; %d of %d updates uploaded$`, agents, agents))
	if n := strings.Count(out, "from relay-1's cache, "+match+"; update "); n != agents {
		t.Errorf("%d agents got the model from relay-1's cache across sites, want %d", n, agents)
	}

	// The final model, computed here from the formulas alone.
	var targets []float32
	for _, m := range regexp.MustCompile(`(?m)^\S+\s+(go|wasm|python) agent \(pid \d+\), training target (\S+)$`).FindAllStringSubmatch(out, -1) {
		f, err := strconv.ParseFloat(m[2], 32)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, float32(f))
	}
	if len(targets) != agents {
		t.Fatalf("%d targets in the output, want %d", len(targets), agents)
	}
	got := must(`(?m)final model sha256 ([0-9a-f]{64})$`)[1]
	if want := referenceModel(demoMiB<<20, demoTensors, demoRounds, 0.5, targets); got != want {
		t.Errorf("final model sha256 %s, want %s", got, want)
	}
}

// referenceModel computes the demo's final model from the formulas of
// model.go's comment, and returns its SHA-256 over names and bytes in
// name order.
func referenceModel(size, tensors, rounds int, lr float32, targets []float32) string {
	elems := size / 4
	names := make([]string, tensors)
	weights := make([][]float32, tensors)
	for j := range tensors {
		n := elems / tensors
		if j == tensors-1 {
			n += elems % tensors
		}
		w := make([]float32, n)
		for i := range w {
			z := uint64(j)<<32 | uint64(i)
			z += 0x9e3779b97f4a7c15
			z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
			z = (z ^ z>>27) * 0x94d049bb133111eb
			z ^= z >> 31
			u := float32(z>>40) * float32(math.Ldexp(1, -24))
			w[i] = float32(float32(u-0.5) * float32(0.04))
		}
		names[j], weights[j] = fmt.Sprintf("layers.%d.weight", j), w
	}
	for range rounds {
		for _, w := range weights {
			for i, x := range w {
				var sum float32
				for k, t := range targets {
					u := x + float32(lr*float32(t-x))
					if k == 0 {
						sum = u
					} else {
						sum = float32(sum + u)
					}
				}
				w[i] = sum / float32(len(targets))
			}
		}
	}
	order := make([]int, tensors)
	for j := range order {
		order[j] = j
	}
	// Name order: "layers.10…" sorts before "layers.2…".
	for a := range order {
		for b := a + 1; b < len(order); b++ {
			if names[order[b]] < names[order[a]] {
				order[a], order[b] = order[b], order[a]
			}
		}
	}
	h := sha256.New()
	for _, j := range order {
		h.Write([]byte(names[j]))
		buf := make([]byte, 4*len(weights[j]))
		for i, x := range weights[j] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestDemoFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-size", "0"}, "-size 0: want 1 to 65536 MiB"},
		{[]string{"-size", "1", "-tensors", "262145"}, "-tensors 262145: want 1 to 262144"},
		{[]string{"-rounds", "0"}, "-rounds 0: want 1 to 1000"},
		{[]string{"-agents", "0", "-wasm-agents", "0"}, "no agents: give -agents N, -wasm-agents N or -python CMD"},
		{[]string{"-wasm-agents", "65"}, "-wasm-agents 65: want 0 to 64"},
		{[]string{"-agents", "65"}, "-agents 65: want 0 to 64"},
		{[]string{"-timeout", "0s"}, "-timeout 0s: want a positive duration"},
	} {
		viacodec(t, dir, nil, append([]string{"demo"}, tt.args...)...).Fails(t, 2, "viacodec demo: "+tt.want)
	}
}

// faultEnv names the fault a test binary started as an agent plays.
const faultEnv = "VIACODEC_TEST_FAULTY_AGENT"

// The demo fails with one line, exit status 1, on any mismatch. A faulty
// agent (this test binary, in the Python agent's place) lies in one way
// each time.
func TestDemoFailsLoudly(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ fault, want string }{
		{"digest", "viacodec demo: round 1: py-agent's copy of layers.0.weight differs from its source's: SHA-256 "},
		{"update", "viacodec demo: round 1: py-agent's update: the server's copy of layers.0.weight differs from its source's: SHA-256 "},
		{"train", "viacodec demo: round 1: the average of the updates differs from the one the server expects: layers.0.weight[0] is "},
		{"kind", "viacodec demo: py-agent (python) says it is py-agent (go)"},
		{"crash", "viacodec demo: py-agent (python): exited: exit status 3: boom"},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			cmd := exec.Command(cmdtest.Path, "demo", "-size", "1", "-tensors", "2", "-rounds", "1", "-agents", "1", "-timeout", "1m", "-python", self)
			cmd.Env = append(os.Environ(), faultEnv+"="+tt.fault)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 1 || err == nil {
				t.Fatalf("exit %d (%v), want 1; stdout:\n%s", code, err, stdout.String())
			}
			if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.HasPrefix(s, tt.want) {
				t.Fatalf("stderr %q: want one line starting %q", s, tt.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("failing took %v", d)
			}
			assertNoneLeft(t)
		})
	}
}

// faultyAgent is an agent that lies in the way fault says, in the Python
// agent's place; TestMain runs it when faultEnv is set.
func faultyAgent(fault, name string) error {
	out := newFrameWriter(os.Stdout)
	p, err := newPeer(name, nil, "")
	if err != nil {
		return err
	}
	defer p.Close()
	kind := "python"
	switch fault {
	case "kind":
		kind = "go"
	case "crash":
		fmt.Fprintln(os.Stderr, "boom")
		os.Exit(3)
	}
	if err := sayHello(out, name, kind); err != nil {
		return err
	}
	var delivered sync.WaitGroup
	err = serveFrames(func(f *fields) error {
		v, err := p.dec.DecodeContext(p.Context(), f.bytes("msg"))
		if err != nil {
			return err
		}
		task := v.(map[string]any)
		round := task["round"].(int64)
		lr, target := task["lr"].(float32), task["targets"].(map[string]any)[name].(float32)
		m, err := modelOf(task["model"])
		if err != nil {
			return err
		}
		digests := m.digests()
		switch fault {
		case "digest":
			digests[m[0].name][0] ^= 1
		case "train":
			target += 0.125
		}
		update := m.trainInPlace(lr, target)
		sums := update.digests()
		if fault == "update" {
			update[0].w[0]++ // after its digest: the server gets other bytes
		}
		msg, tx, err := p.publish(map[string]any{"agent": name, "round": round, "update": update.body()}, 1)
		if err != nil {
			return err
		}
		delivered.Go(func() {
			if o, err := tx.Wait(p.Context()); err == nil {
				out.write(outcomeFrame(round, o))
			}
		})
		report := map[string]any{"round": round, "held": m.bytes(), "lazy": 0, "downloaded": -1, "ns": 1, "sha256": digestMap(digests), "rss": peakRSS()}
		return out.write(map[string]any{"op": "result", "msg": msg, "report": report, "sha256": digestMap(sums)})
	})
	delivered.Wait()
	return err
}

// With -store the server and the Go agents publish through an object
// store (SeaweedFS here, the AWS environment variables pointing at it):
// the rounds complete and nothing is left in the store.
func TestDemoStore(t *testing.T) {
	w := weedtest.Start(t)
	w.SetEnv(t)
	out := viacodec(t, t.TempDir(), nil, "demo", "-size", "2", "-tensors", "2", "-rounds", "2", "-agents", "2", "-wasm-agents", "0",
		"-timeout", "2m", "-store", "s3://"+weedtest.Bucket+"/demo").OK(t).Stdout
	t.Log("\n" + out)
	for _, want := range []string{
		"  round 1: origin egress: 0.00× the model served, plus one upload to the store\n",
		"  the server's model and the Go agents' updates went through s3://" + weedtest.Bucket + "/demo: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output has no %q", want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for o := range w.Client(t).ListObjects(ctx, weedtest.Bucket, minio.ListObjectsOptions{Prefix: "demo/", Recursive: true}) {
		t.Errorf("left in the store: %v %v", o.Key, o.Err)
	}
	assertNoneLeft(t)
}
