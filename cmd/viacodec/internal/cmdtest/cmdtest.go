// Package cmdtest runs the viacodec command in tests as users do: a
// subprocess, built once per test binary. The command's own tests and
// the demo's use it.
package cmdtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Path is the command TestMain built.
var Path string

// Main builds the command into a temporary directory, runs the tests and
// exits with their status; a test package's TestMain calls it.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "viacodec-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	Path = filepath.Join(dir, "viacodec")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	build := exec.Command(gobin, "build", "-o", Path, "github.com/viacodec/viacodec/cmd/viacodec")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goPackage is the prefix of an error of one of viacodec's packages,
// which the command's errors never show.
var goPackage = regexp.MustCompile(`(^|: )(core|hostdl|tensorfile|offload|abi|wasm): `)

// Result is what a run printed and its exit status.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs the command with stdin (nil for none) in dir.
func Run(t *testing.T, dir string, stdin []byte, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Path, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("viacodec %q: %v", args, err)
	}
	return Result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// OK checks that a run succeeded with nothing on stderr.
func (r Result) OK(t *testing.T) Result {
	t.Helper()
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
	}
	return r
}

// Fails checks that a run failed with code and one line on stderr that
// holds want and names no Go package, and nothing on stdout.
func (r Result) Fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.Code != code || r.Stdout != "" {
		t.Fatalf("exit %d, stdout %q; want exit %d and no output", r.Code, r.Stdout, code)
	}
	if strings.Count(r.Stderr, "\n") != 1 || !strings.HasSuffix(r.Stderr, "\n") || !strings.Contains(r.Stderr, want) {
		t.Fatalf("stderr %q: want one line holding %q", r.Stderr, want)
	}
	if m := goPackage.FindString(r.Stderr); m != "" {
		t.Fatalf("stderr %q names the Go package %q", r.Stderr, m)
	}
}
