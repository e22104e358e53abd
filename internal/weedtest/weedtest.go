// Package weedtest runs a real S3 engine for tests: SeaweedFS's
// `weed mini`, on free loopback ports, with one identity (AccessKey) so
// that unsigned and badly signed requests are refused. `make weed` builds
// the binary into .tools/bin (tools/seaweedfs pins its version);
// VIACODEC_WEED names another.
package weedtest

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The identity and the bucket of every Weed.
const (
	AccessKey = "viacodec-test"
	SecretKey = "viacodec-test-secret-0123456789"
	Bucket    = "viacodec"
)

// Binary returns the path of the weed binary (BinaryPath), or fails the
// test loudly: these tests never pass by skipping.
func Binary(t testing.TB) string {
	p, err := BinaryPath()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BinaryPath returns VIACODEC_WEED if set, else .tools/bin/weed in the
// repository of the working directory (a test's is its package's), or an
// error that says how to build it.
func BinaryPath() (string, error) {
	if p := os.Getenv("VIACODEC_WEED"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "seaweedfs", "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("weedtest: no repository (tools/seaweedfs) above the working directory")
		}
		dir = up
	}
	p := filepath.Join(dir, ".tools", "bin", "weed")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("weedtest: no SeaweedFS binary at %s: run `make weed` (it builds tools/seaweedfs), or set VIACODEC_WEED: %w", p, err)
	}
	return p, nil
}

// Weed is one `weed mini` process on loopback.
type Weed struct {
	cmd      *exec.Cmd
	Endpoint string // http://127.0.0.1:PORT, the S3 API
	exited   chan struct{}
	log      string
}

// freePorts returns n distinct loopback ports free now (weed binds them
// moments later). They are drawn below the kernel's ephemeral range, so
// that no other test's listener on port 0, nor an outgoing connection,
// takes one in between.
func freePorts(n int) ([]int, error) {
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 4*n {
		lo = 1024
	}
	var ls []net.Listener
	var ports []int
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("weedtest: no %d free loopback ports in %d..%d", n, lo, hi-1)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lo+rand.IntN(hi-lo)))
		if err != nil {
			continue // taken
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if lo, err := strconv.Atoi(f[0]); err == nil && lo > 1024 {
			return lo
		}
	}
	return 32768
}

// Start starts a weed mini of the test's own (Launch), stopped
// when the test ends.
func Start(t testing.TB) *Weed {
	w, err := Launch(Binary(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
	})
	return w
}

// Launch starts `weed mini` in dir with every port explicit and on
// loopback, telemetry off, and one identity (AccessKey) so that unsigned
// requests are refused; it waits until S3 answers, creates Bucket,
// and checks that nothing listens beyond loopback.
func Launch(bin, dir string) (*Weed, error) {
	for attempt := 1; ; attempt++ {
		w, err := launch(bin, dir)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "Port allocation failed") {
			return w, err
		}
		// A port was taken between freePorts and weed's bind: draw again.
		os.RemoveAll(filepath.Join(dir, "data"))
	}
}

func launch(bin, dir string) (*Weed, error) {
	conf := filepath.Join(dir, "s3.json")
	c, _ := json.Marshal(map[string]any{"identities": []any{map[string]any{
		"name":        "viacodec",
		"credentials": []any{map[string]string{"accessKey": AccessKey, "secretKey": SecretKey}},
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}})
	if err := os.WriteFile(conf, c, 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o700)
	p, err := freePorts(10)
	if err != nil {
		return nil, err
	}
	args := []string{"mini",
		"-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.telemetry=false", "-master.telemetry.url=",
		"-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-admin.port.legacy=0", "-s3.config=" + conf,
		"-s3.port=" + strconv.Itoa(p[0]), "-s3.port.grpc=" + strconv.Itoa(p[1]),
		"-master.port=" + strconv.Itoa(p[2]), "-master.port.grpc=" + strconv.Itoa(p[3]),
		"-volume.port=" + strconv.Itoa(p[4]), "-volume.port.grpc=" + strconv.Itoa(p[5]),
		"-filer.port=" + strconv.Itoa(p[6]), "-filer.port.grpc=" + strconv.Itoa(p[7]),
		"-admin.port=" + strconv.Itoa(p[8]), "-admin.port.grpc=" + strconv.Itoa(p[9]),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
	}
	w := &Weed{Endpoint: "http://127.0.0.1:" + strconv.Itoa(p[0]), exited: make(chan struct{}), log: filepath.Join(dir, "weed.log")}
	logf, err := os.Create(w.log)
	if err != nil {
		return nil, err
	}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Dir = dir
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	w.cmd.Env = append(os.Environ(), "HOME="+dir) // no config of the user's
	if err := w.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { w.cmd.Wait(); logf.Close(); close(w.exited) }()

	fail := func(err error) (*Weed, error) {
		w.Stop()
		return nil, err
	}
	mc, err := w.newClient()
	if err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := mc.MakeBucket(ctx, Bucket, minio.MakeBucketOptions{})
		cancel()
		if err == nil {
			break
		}
		select {
		case <-w.exited:
			return fail(fmt.Errorf("weed mini exited: %v\n%s", err, w.tail()))
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("weed mini: S3 not ready after 90s: %v\n%s", err, w.tail()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := w.checkLoopback(); err != nil {
		return fail(err)
	}
	return w, nil
}

// client returns an S3 client with the test identity.
func (w *Weed) Client(t testing.TB) *minio.Client {
	mc, err := w.newClient()
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func (w *Weed) newClient() (*minio.Client, error) {
	return minio.New(strings.TrimPrefix(w.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: "us-east-1",
	})
}

// stop sends SIGTERM and waits for the process to exit (killing it after
// 30 s, an error). Stopping again does nothing.
func (w *Weed) Stop() error {
	select {
	case <-w.exited:
		return nil
	default:
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
		return nil
	case <-time.After(30 * time.Second):
		w.cmd.Process.Kill()
		<-w.exited
		return fmt.Errorf("weed mini did not stop within 30s of SIGTERM")
	}
}

func (w *Weed) tail() string {
	b, _ := os.ReadFile(w.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// checkLoopback fails the test if the process listens on any address but
// loopback: its sockets in /proc/PID/fd, looked up in /proc/net/tcp{,6}.
func (w *Weed) checkLoopback() error {
	pid := w.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return fmt.Errorf("weed mini: cannot list its sockets: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	listening := 0
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "0A" || !inodes[fl[9]] { // 0A: LISTEN
				continue
			}
			listening++
			addr, _, _ := strings.Cut(fl[1], ":")
			if !loopbackHex(addr) {
				f.Close()
				return fmt.Errorf("weed mini listens beyond loopback: %s %s", table, fl[1])
			}
		}
		f.Close()
	}
	if listening == 0 {
		return fmt.Errorf("weed mini: found none of its listening sockets")
	}
	return nil
}

// loopbackHex reports whether a /proc/net/tcp address (hex, host byte
// order per 32-bit word) is in 127.0.0.0/8 or is ::1.
func loopbackHex(h string) bool {
	b, err := hex.DecodeString(h)
	if err != nil {
		return false
	}
	switch len(b) {
	case 4:
		return b[3] == 127 // little-endian word: the first octet is last
	case 16:
		return h == "00000000000000000000000001000000" || // ::1
			(h[:24] == "0000000000000000FFFF0000" && b[15] == 127) // ::ffff:127.x
	}
	return false
}

// SetEnv points the AWS environment variables of the test's process, and
// so of the processes it starts, at w: endpoint, identity and region.
func (w *Weed) SetEnv(t testing.TB) {
	t.Setenv("AWS_ENDPOINT_URL_S3", w.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
}
