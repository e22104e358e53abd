package hostdl

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// The test binary doubles as a child process: with HOSTDL_CHILD set,
// TestMain runs that role instead of the tests.
//
//	source   serve a model of HOSTDL_SIZE bytes in HOSTDL_TENSORS tensors;
//	         print "MSG <base64 message>" and then serve until stdin closes
//	         (or SIGKILL).
//	receive  decode the message in the file HOSTDL_MSG with a Client, then
//	         print "HWM <peak RSS bytes>".
func TestMain(m *testing.M) {
	switch os.Getenv("HOSTDL_CHILD") {
	case "":
		os.Exit(m.Run())
	case "source":
		childSource()
	case "receive":
		childReceive()
	default:
		fmt.Fprintln(os.Stderr, "unknown HOSTDL_CHILD")
		os.Exit(2)
	}
	os.Exit(0)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func childFail(err error) {
	fmt.Fprintln(os.Stderr, "child:", err)
	os.Exit(1)
}

func childSource() {
	table, err := core.NewTable(core.TableOptions{})
	if err != nil {
		childFail(err)
	}
	srv, err := NewServer(table, ServerOptions{Logger: quiet})
	if err != nil {
		childFail(err)
	}
	mdl := newModel(envInt("HOSTDL_SIZE", 1<<20), envInt("HOSTDL_TENSORS", 4), 1)
	em, err := core.EncOptions{ByRef: true, Source: srv.Source(), RefThreshold: 1}.EncMode()
	if err != nil {
		childFail(err)
	}
	msg, err := em.Encode(mdl.body())
	if err != nil {
		childFail(err)
	}
	b := msg.Batch()
	b.Manifest() // checksum now, not on the first request
	if _, err := table.Publish(b, core.PublishOptions{Timeout: time.Hour}); err != nil {
		childFail(err)
	}
	fmt.Printf("MSG %s\n", base64.StdEncoding.EncodeToString(msg.Bytes()))
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

func childReceive() {
	data, err := os.ReadFile(os.Getenv("HOSTDL_MSG"))
	if err != nil {
		childFail(err)
	}
	c, err := NewClient(ClientOptions{Logger: quiet})
	if err != nil {
		childFail(err)
	}
	dm, err := core.DecOptions{Fetcher: c}.DecMode()
	if err != nil {
		childFail(err)
	}
	v, err := dm.Decode(data)
	if err != nil {
		childFail(err)
	}
	fmt.Printf("HWM %d\n", procStatus(0, "VmHWM"))
	_ = v
}

// child is a running child process of the test binary.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startChild runs the test binary in role with env, and stops it (closes
// its stdin, then kills it after 5s) when tb ends.
func startChild(tb testing.TB, role string, env ...string) *child {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "HOSTDL_CHILD="+role)...)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReaderSize(stdout, 1<<20)}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	return c
}

// line reads the child's next output line starting with prefix.
func (c *child) line(tb testing.TB, prefix string) string {
	tb.Helper()
	for {
		s, err := c.out.ReadString('\n')
		if err != nil {
			tb.Fatalf("child output: %v", err)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(s), prefix+" "); ok {
			return v
		}
	}
}

// message reads the message a source child printed.
func (c *child) message(tb testing.TB) []byte {
	tb.Helper()
	data, err := base64.StdEncoding.DecodeString(c.line(tb, "MSG"))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
