package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The tests run the command as users do: a subprocess, built once.
var commandPath string

func TestMain(m *testing.M) {
	if fault := os.Getenv(faultEnv); fault != "" {
		if err := faultyAgent(fault, os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	flag.Parse()
	dir, err := os.MkdirTemp("", "viacodec-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	commandPath = filepath.Join(dir, "viacodec")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	build := exec.Command(gobin, "build", "-o", commandPath, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// viacodec runs the command with stdin (nil for none) in dir.
func viacodec(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(commandPath, args...)
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
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// ok checks that a run succeeded with nothing on stderr.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	return r
}

// fails checks that a run failed with code and one line on stderr that
// holds want, and nothing on stdout.
func (r result) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; want exit %d and no output", r.code, r.stdout, code)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q: want one line holding %q", r.stderr, want)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	names := []string{"demo", "inspect", "pack", "unpack", "serve", "fetch"}

	// No command: usage on stderr, exit 2.
	r := viacodec(t, dir, nil)
	if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "usage: viacodec <command>") {
		t.Fatalf("no command: %+v", r)
	}
	for _, name := range names {
		if !strings.Contains(r.stderr, "\n  "+name+" ") {
			t.Errorf("usage does not list %s:\n%s", name, r.stderr)
		}
	}
	// Help: usage on stdout, exit 0.
	for _, h := range []string{"-h", "-help", "--help", "help"} {
		r := viacodec(t, dir, nil, h).ok(t)
		if !strings.HasPrefix(r.stdout, "usage: viacodec <command>") {
			t.Errorf("%s: stdout %q", h, r.stdout)
		}
	}
	// The demo's hidden commands are not listed, and have their usage.
	for _, name := range []string{"agent", "relay"} {
		if strings.Contains(r.stderr, "\n  "+name+" ") {
			t.Errorf("usage lists the hidden %s", name)
		}
		if r := viacodec(t, dir, nil, name, "-h").ok(t); !strings.HasPrefix(r.stdout, "usage: viacodec "+name+" [-name NAME]") {
			t.Errorf("%s -h: %q", name, r.stdout)
		}
	}
	// Unknown command: usage on stderr, exit 2.
	r = viacodec(t, dir, nil, "frobnicate")
	if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, `viacodec: unknown command "frobnicate"`) || !strings.Contains(r.stderr, "usage: viacodec") {
		t.Fatalf("unknown command: %+v", r)
	}

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{name, "-h"}, {name, "--help"}, {"help", name}} {
				r := viacodec(t, dir, nil, args...).ok(t)
				if !strings.HasPrefix(r.stdout, "usage: viacodec "+name+" ") || !strings.Contains(r.stdout, "\nflags:\n") {
					t.Fatalf("%q: stdout %q", args, r.stdout)
				}
			}
			viacodec(t, dir, nil, name, "-no-such-flag").fails(t, 2, "viacodec "+name+": flag provided but not defined: -no-such-flag (see 'viacodec "+name+" -h')")
		})
	}
	for _, name := range names[1:] {
		viacodec(t, dir, nil, name).fails(t, 2, "viacodec "+name+": expects one")
		viacodec(t, dir, nil, name, "a", "b").fails(t, 2, "viacodec "+name+": expects one")
	}
	viacodec(t, dir, nil, "inspect", "-width", "-1", "x").fails(t, 2, "-width -1 is negative")
}

// Flags may follow the file, and "--" ends them.
func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		out  string
		pos  []string
	}{
		{[]string{"f", "-o", "x"}, "x", []string{"f"}},
		{[]string{"-o", "x", "f"}, "x", []string{"f"}},
		{[]string{"f", "-o", "x", "g"}, "x", []string{"f", "g"}},
		{[]string{"-", "-o", "x"}, "x", []string{"-"}},
		{[]string{"--", "-o", "x"}, "", []string{"-o", "x"}},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		out := fs.String("o", "", "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil || *out != tt.out || !slices.Equal(pos, tt.pos) {
			t.Errorf("%q: -o %q, args %q, %v; want -o %q, args %q", tt.args, *out, pos, err, tt.out, tt.pos)
		}
	}
}
