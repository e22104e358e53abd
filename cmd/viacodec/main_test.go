package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cmdtest"
	"github.com/viacodec/viacodec/internal/tensorfile"
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

// The usage line of every command, hidden ones too, lists each of its
// flags, with the value it takes.
func TestUsageListsEveryFlag(t *testing.T) {
	dir := t.TempDir()
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: (\S+))?\n`)
	for _, name := range []string{"demo", "inspect", "pack", "unpack", "serve", "fetch", "agent", "relay"} {
		out := viacodec(t, dir, nil, name, "-h").OK(t).Stdout
		usage, _, _ := strings.Cut(out, "\n\n")
		usage = strings.Join(strings.Fields(usage), " ")
		flags := flagLine.FindAllStringSubmatch(out, -1)
		if len(flags) == 0 {
			t.Fatalf("%s -h lists no flags:\n%s", name, out)
		}
		for _, f := range flags {
			want := "[-" + f[1] + "]"
			if f[2] != "" {
				want = "[-" + f[1] + " " + f[2] + "]"
			}
			if !strings.Contains(usage, want) {
				t.Errorf("%s: the usage line %q lacks %s", name, usage, want)
			}
		}
	}
	for name, want := range map[string]string{"demo": "[-wasm-agents N]", "serve": "[-ref-threshold BYTES]"} {
		if out := viacodec(t, dir, nil, name, "-h").OK(t).Stdout; !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("%s -h lacks %s", name, want)
		}
	}
}

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		out := viacodec(t, dir, nil, args...).OK(t).Stdout
		if !regexp.MustCompile(`^viacodec \S+ \(wire format \d+, go\d+\.\d+[^)]*\)\n$`).MatchString(out) {
			t.Errorf("%q: %q", args, out)
		}
	}
	if r := viacodec(t, dir, nil); !strings.Contains(r.Stderr, "\n  version ") {
		t.Errorf("the command list lacks version:\n%s", r.Stderr)
	}
}

// The command's errors read in its own terms: no Go package prefixes, no
// Go option names or types, the flags named instead.
func TestErrorsInTheCommandsTerms(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, modelFile(t, tensorfile.Safetensors))
	os.WriteFile(filepath.Join(dir, "junk.cbor"), []byte("not a message at all"), 0o644)
	// A message whose map has a float key: [1, {1.5: 2}, []] in the envelope.
	os.WriteFile(filepath.Join(dir, "floatkey.cbor"), []byte("\xda\x56\x43\x00\x00\x83\x01\xa1\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00\x02\x80"), 0o644)
	goText := regexp.MustCompile(`\b(core|hostdl|tensorfile): |Options\.|TLSFiles|CertFile|KeyFile|CAFile| of type |float64|\*core\.`)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "m.safetensors", "-advertise", "ftp://x"}, `"ftp://x" is not an http:// or https:// base URL`},
		{[]string{"serve", "m.safetensors", "-tls-cert", "c.pem"}, "viacodec serve: TLS needs both -tls-cert and -tls-key, or neither"},
		{[]string{"serve", "m.safetensors", "-client-auth"}, "viacodec serve: -client-auth needs TLS with -tls-cert, -tls-key and -tls-ca"},
		{[]string{"fetch", "junk.cbor", "-o", "x.npz", "-tls-key", "k.pem"}, "viacodec fetch: TLS needs both -tls-cert and -tls-key, or neither"},
		{[]string{"inspect", "floatkey.cbor"}, "viacodec inspect: floatkey.cbor: map key is a float, not an integer, text, byte string, boolean or null at offset 8"},
		{[]string{"unpack", "floatkey.cbor", "-o", "x.npz"}, "viacodec unpack: floatkey.cbor: map key is a float, not an integer"},
	} {
		r := viacodec(t, dir, nil, tt.args...)
		r.Fails(t, 1, tt.want)
		if m := goText.FindString(r.Stderr); m != "" {
			t.Errorf("%q: %q speaks Go (%q)", tt.args, r.Stderr, m)
		}
	}
}
