package main

import (
	"strings"
	"testing"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cmdtest"
)

func TestMain(m *testing.M) { cmdtest.Main(m) }

// viacodec runs the command as users do: a subprocess, built once.
var viacodec = cmdtest.Run

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	names := []string{"demo", "inspect", "pack", "unpack", "serve", "fetch"}

	// No command: usage on stderr, exit 2.
	r := viacodec(t, dir, nil)
	if r.Code != 2 || r.Stdout != "" || !strings.HasPrefix(r.Stderr, "usage: viacodec <command>") {
		t.Fatalf("no command: %+v", r)
	}
	for _, name := range names {
		if !strings.Contains(r.Stderr, "\n  "+name+" ") {
			t.Errorf("usage does not list %s:\n%s", name, r.Stderr)
		}
	}
	// Help: usage on stdout, exit 0.
	for _, h := range []string{"-h", "-help", "--help", "help"} {
		r := viacodec(t, dir, nil, h).OK(t)
		if !strings.HasPrefix(r.Stdout, "usage: viacodec <command>") {
			t.Errorf("%s: stdout %q", h, r.Stdout)
		}
	}
	// The demo's hidden commands are not listed, and have their usage.
	for _, name := range []string{"agent", "relay"} {
		if strings.Contains(r.Stderr, "\n  "+name+" ") {
			t.Errorf("usage lists the hidden %s", name)
		}
		if r := viacodec(t, dir, nil, name, "-h").OK(t); !strings.HasPrefix(r.Stdout, "usage: viacodec "+name+" [-name NAME]") {
			t.Errorf("%s -h: %q", name, r.Stdout)
		}
	}
	// Unknown command: usage on stderr, exit 2.
	r = viacodec(t, dir, nil, "frobnicate")
	if r.Code != 2 || r.Stdout != "" || !strings.HasPrefix(r.Stderr, `viacodec: unknown command "frobnicate"`) || !strings.Contains(r.Stderr, "usage: viacodec") {
		t.Fatalf("unknown command: %+v", r)
	}

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{name, "-h"}, {name, "--help"}, {"help", name}} {
				r := viacodec(t, dir, nil, args...).OK(t)
				if !strings.HasPrefix(r.Stdout, "usage: viacodec "+name+" ") || !strings.Contains(r.Stdout, "\nflags:\n") {
					t.Fatalf("%q: stdout %q", args, r.Stdout)
				}
			}
			viacodec(t, dir, nil, name, "-no-such-flag").Fails(t, 2, "viacodec "+name+": flag provided but not defined: -no-such-flag (see 'viacodec "+name+" -h')")
		})
	}
	for _, name := range names[1:] {
		viacodec(t, dir, nil, name).Fails(t, 2, "viacodec "+name+": expects one")
		viacodec(t, dir, nil, name, "a", "b").Fails(t, 2, "viacodec "+name+": expects one")
	}
	viacodec(t, dir, nil, "inspect", "-width", "-1", "x").Fails(t, 2, "-width -1 is negative")
}
