package sitetest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// roleEnv makes the test binary one node of the topology instead.
const roleEnv = "VIACODEC_SITE_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runRole(role); err != nil {
			fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// ---- The topology ----

// topology is a bridge in a namespace of its own and one namespace per
// node, each with one veth on the bridge and the address 10.77.0.N/24.
type topology struct {
	tb   testing.TB
	pfx  string
	nss  []string
	addr map[string]string // node -> its IP
}

// run runs a command and fails the test with its output when it fails.
func (t *topology) run(args ...string) {
	t.tb.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.tb.Fatalf("sitetest: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (t *topology) ns(node string) string { return t.pfx + node }

// newTopology makes the namespaces of nodes, the origin's uplink limited
// to rateMbit. It removes them when the test ends.
func newTopology(tb testing.TB, rateMbit int, nodes ...string) *topology {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("sitetest: the topology needs root (network namespaces); run the test as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Fatal("sitetest: the topology needs iproute2's ip (ip netns) and tc")
	}
	t := &topology{tb: tb, pfx: fmt.Sprintf("vc%d-", os.Getpid()%100000), addr: map[string]string{}}
	tb.Cleanup(func() {
		for _, ns := range t.nss {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	sw := t.ns("sw")
	t.run("ip", "netns", "add", sw)
	t.nss = append(t.nss, sw)
	t.run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	t.run("ip", "-n", sw, "link", "set", "br0", "up")
	for i, node := range nodes {
		ns := t.ns(node)
		t.run("ip", "netns", "add", ns)
		t.nss = append(t.nss, ns)
		port := fmt.Sprintf("p%d", i)
		t.run("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		t.run("ip", "-n", sw, "link", "set", port, "master", "br0", "up")
		ip := fmt.Sprintf("10.77.0.%d", i+1)
		t.addr[node] = ip
		t.run("ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		t.run("ip", "-n", ns, "link", "set", "eth0", "up")
		t.run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	// The origin's uplink: what it sends, at rateMbit.
	t.run("ip", "netns", "exec", t.ns("origin"), "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
		"rate", fmt.Sprintf("%dmbit", rateMbit), "burst", "256kb", "latency", "50ms")
	return t
}

// node is a process of the topology: this binary in a namespace, in a role.
type node struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
}

func (t *topology) start(name, role string, env ...string) *node {
	t.tb.Helper()
	cmd := exec.Command("ip", "netns", "exec", t.ns(name), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, roleEnv+"="+role, "SITE_ADDR="+t.addr[name])...)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.tb.Fatalf("sitetest: start %s: %v", name, err)
	}
	n := &node{name: name, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	n.out.Buffer(make([]byte, 1<<20), 16<<20)
	t.tb.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return n
}

func (n *node) send(tb testing.TB, line string) {
	tb.Helper()
	if _, err := io.WriteString(n.in, line+"\n"); err != nil {
		tb.Fatalf("sitetest: %s: %v", n.name, err)
	}
}

// expect reads the node's next line, which must start with word.
func (n *node) expect(tb testing.TB, word string) []string {
	tb.Helper()
	if !n.out.Scan() {
		tb.Fatalf("sitetest: %s ended (%v), waiting for %q", n.name, n.out.Err(), word)
	}
	f := strings.Fields(n.out.Text())
	if len(f) == 0 || f[0] != word {
		tb.Fatalf("sitetest: %s said %q, want %q", n.name, n.out.Text(), word)
	}
	return f[1:]
}

// ---- The roles ----

var quiet = slog.New(slog.DiscardHandler)

func envInt(name string) int {
	v, _ := strconv.Atoi(os.Getenv(name))
	return v
}

// modelBytes is the model every node can compute: size bytes from seed.
func modelBytes(size int, seed uint64) []byte {
	b := make([]byte, size)
	x := seed*0x9E3779B97F4A7C15 | 1
	for i := 0; i+8 <= size; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	return b
}

const tensors = 4

func modelBody(raw []byte) (map[string]any, error) {
	body := map[string]any{}
	per := len(raw) / tensors
	for i := range tensors {
		a, err := core.NewArray(core.DTypeFloat32, []int{per / 4}, core.RowMajor, raw[i*per:(i+1)*per])
		if err != nil {
			return nil, err
		}
		body[fmt.Sprintf("w%d", i)] = a
	}
	return body, nil
}

func runRole(role string) error {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	addr := os.Getenv("SITE_ADDR") + ":0"
	switch role {
	case "origin":
		return runOrigin(in, addr)
	case "relay":
		return runRelay(in, addr)
	case "receivers":
		return runReceivers(in)
	}
	return fmt.Errorf("unknown role %q", role)
}

// runOrigin publishes the model for "publish N" and reports the bytes its
// server sent and each transaction's outcome.
func runOrigin(in *bufio.Scanner, addr string) error {
	h, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Server: hostdl.ServerOptions{Addr: addr, AllowCleartext: true}})
	if err != nil {
		return err
	}
	defer h.Close()
	body, err := modelBody(modelBytes(envInt("SITE_SIZE"), 1))
	if err != nil {
		return err
	}
	em, err := h.EncMode(core.EncOptions{})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch f[0] {
		case "publish":
			n, _ := strconv.Atoi(f[1])
			msg, err := em.Encode(body)
			if err != nil {
				return err
			}
			if _, err := h.Publish(msg.Batch(), core.PublishOptions{Receivers: n}); err != nil {
				return err
			}
			say("msg %s", hex.EncodeToString(msg.Bytes()))
		case "served":
			say("served %d", h.Stats().BytesServed)
		}
	}
	return nil
}

// runRelay forwards each "forward HEX" through a caching relay and reports
// its counters on "stats".
func runRelay(in *bufio.Scanner, addr string) error {
	r, err := hostdl.NewRelay(hostdl.RelayOptions{Logger: quiet, Budget: int64(envInt("SITE_BUDGET")),
		Server: hostdl.ServerOptions{Addr: addr, AllowCleartext: true}})
	if err != nil {
		return err
	}
	defer r.Close()
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch f[0] {
		case "forward":
			msg, err := hex.DecodeString(f[1])
			if err != nil {
				return err
			}
			fwd, err := r.Forward(msg)
			if err != nil {
				return err
			}
			fmt.Printf("msg %s\n", hex.EncodeToString(fwd))
		case "stats":
			st := r.Stats()
			fmt.Printf("stats %d %d %d\n", st.PeakBytes, st.UpstreamBytes, st.Refused)
		}
	}
	return nil
}

// runReceivers decodes each "fetch HEX" with SITE_RECEIVERS receivers at
// once, checks the model, and reports the slowest one's time.
func runReceivers(in *bufio.Scanner) error {
	n, size := envInt("SITE_RECEIVERS"), envInt("SITE_SIZE")
	want := modelBytes(size, 1)
	for in.Scan() {
		f := strings.Fields(in.Text())
		msg, err := hex.DecodeString(f[1])
		if err != nil {
			return err
		}
		start := time.Now()
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				c, err := hostdl.NewClient(hostdl.ClientOptions{Logger: quiet, Receiver: fmt.Sprintf("%s-%d", os.Getenv("SITE_NAME"), i)})
				if err != nil {
					errs[i] = err
					return
				}
				defer c.Close()
				dm, _ := core.DecOptions{Fetcher: c}.DecMode()
				v, err := dm.Decode(msg)
				if err != nil {
					errs[i] = err
					return
				}
				per := size / tensors
				for k := range tensors {
					a := v.(map[string]any)[fmt.Sprintf("w%d", k)].(*core.Array)
					if !bytes.Equal(a.Data, want[k*per:(k+1)*per]) {
						errs[i] = fmt.Errorf("w%d differs", k)
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		fmt.Printf("done %d\n", time.Since(start).Nanoseconds())
	}
	return nil
}

// ---- The runs ----

// result is one run: the origin's egress and the time until every
// receiver held the model.
type result struct {
	egress int64
	took   time.Duration
}

// sites is a running topology: an origin, two relays, two sites of
// receivers.
type sites struct {
	t              *topology
	origin         *node
	relays, groups []*node
	size           int
}

const (
	perSite = 4
	budget  = 32 << 20
)

func startSites(tb testing.TB, size, rateMbit int) *sites {
	t := newTopology(tb, rateMbit, "origin", "relay-a", "relay-b", "site-a", "site-b")
	env := []string{"SITE_SIZE=" + strconv.Itoa(size), "SITE_RECEIVERS=" + strconv.Itoa(perSite), "SITE_BUDGET=" + strconv.Itoa(budget)}
	s := &sites{t: t, size: size, origin: t.start("origin", "origin", env...)}
	for _, r := range []string{"relay-a", "relay-b"} {
		s.relays = append(s.relays, t.start(r, "relay", env...))
	}
	for _, g := range []string{"site-a", "site-b"} {
		s.groups = append(s.groups, t.start(g, "receivers", append(env, "SITE_NAME="+g)...))
	}
	return s
}

func (s *sites) served(tb testing.TB) int64 {
	s.origin.send(tb, "served")
	v, _ := strconv.ParseInt(s.origin.expect(tb, "served")[0], 10, 64)
	return v
}

// run publishes the model for the 8 receivers and has them fetch it,
// through the relays or straight from the origin.
func (s *sites) run(tb testing.TB, relayed bool) result {
	tb.Helper()
	before := s.served(tb)
	s.origin.send(tb, fmt.Sprintf("publish %d", perSite*len(s.groups)))
	msg := s.origin.expect(tb, "msg")[0]
	msgs := []string{msg, msg}
	if relayed {
		for i, r := range s.relays {
			r.send(tb, "forward "+msg)
			msgs[i] = r.expect(tb, "msg")[0]
		}
	}
	start := time.Now()
	for i, g := range s.groups {
		g.send(tb, "fetch "+msgs[i])
	}
	for _, g := range s.groups {
		g.expect(tb, "done")
	}
	return result{egress: s.served(tb) - before, took: time.Since(start)}
}

// relayPeak returns the relays' largest peak of bytes held.
func (s *sites) relayPeak(tb testing.TB) int64 {
	peak := int64(0)
	for _, r := range s.relays {
		r.send(tb, "stats")
		f := r.expect(tb, "stats")
		v, _ := strconv.ParseInt(f[0], 10, 64)
		peak = max(peak, v)
		tb.Logf("%s: peak %s, upstream %s, refused %s", r.name, f[0], f[1], f[2])
	}
	return peak
}

// TestSites: 8 receivers in two sites, 16 MiB over an origin uplink of
// 400 Mbit/s. Through a caching relay per site the origin sends about two
// copies instead of eight, every receiver gets the model bit for bit, and
// each relay holds no more than its budget.
func TestSites(t *testing.T) {
	size := 16 << 20
	s := startSites(t, size, 400)
	direct := s.run(t, false)
	relayed := s.run(t, true)
	peak := s.relayPeak(t)
	model := float64(size)
	t.Logf("direct: origin egress %.2f× the model in %v; relayed: %.2f× in %v (%.2f× the direct time); relay peak %d MiB (budget %d MiB)",
		float64(direct.egress)/model, direct.took.Round(time.Millisecond), float64(relayed.egress)/model,
		relayed.took.Round(time.Millisecond), relayed.took.Seconds()/direct.took.Seconds(), peak>>20, budget>>20)
	if float64(relayed.egress) > (2+0.05)*model {
		t.Errorf("relayed: origin egress %.2f× the model, want at most 2.05×", float64(relayed.egress)/model)
	}
	if float64(direct.egress) < 7.95*model {
		t.Errorf("direct: origin egress %.2f× the model, want 8×", float64(direct.egress)/model)
	}
	if peak > budget {
		t.Errorf("a relay held %d bytes, over its budget of %d", peak, budget)
	}
	if relayed.took >= direct.took {
		t.Errorf("relayed took %v, direct %v: the relays saved no time on the limited uplink", relayed.took, direct.took)
	}
}

// BenchmarkSites is the full topology: a 64 MiB model, an origin uplink of
// 1 Gbit/s, 2 relays, 8 receivers. It reports the origin's egress per
// model, relayed and direct, the relayed time against the direct one and
// against the time the origin's uplink needs for the bytes it must carry
// (two copies), and the relays' peak memory.
func BenchmarkSites(b *testing.B) {
	const size, rateMbit = 64 << 20, 1000
	s := startSites(b, size, rateMbit)
	var direct, relayed result
	for b.Loop() {
		direct = s.run(b, false)
		relayed = s.run(b, true)
	}
	model := float64(size)
	ideal := 2 * model * 8 / (rateMbit * 1e6) // seconds for two copies on the uplink
	b.ReportMetric(float64(direct.egress)/model, "direct-egress/model")
	b.ReportMetric(float64(relayed.egress)/model, "relayed-egress/model")
	b.ReportMetric(relayed.took.Seconds()/direct.took.Seconds(), "relayed-time/direct")
	b.ReportMetric(relayed.took.Seconds()/ideal, "relayed-time/uplink-ideal")
	b.ReportMetric(float64(s.relayPeak(b))/(1<<20), "relay-peak-MiB")
}
