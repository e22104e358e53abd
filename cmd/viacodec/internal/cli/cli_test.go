package cli

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
)

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
		pos, err := ParseArgs(fs, tt.args)
		if err != nil || *out != tt.out || !slices.Equal(pos, tt.pos) {
			t.Errorf("%q: -o %q, args %q, %v; want -o %q, args %q", tt.args, *out, pos, err, tt.out, tt.pos)
		}
	}
}

// An error reads as one line in the user's terms: no package prefixes,
// and the Go options a command sets from its flags named as the flags.
func TestMessage(t *testing.T) {
	flags := strings.NewReplacer("ServerOptions.Advertise", "-advertise", "TLSFiles", "TLS")
	for _, tt := range []struct{ err, want string }{
		{"core: not a viacodec message (no envelope tag) at offset 0", "not a viacodec message (no envelope tag) at offset 0"},
		{"m.safetensors: tensorfile: safetensors: header is not valid UTF-8", "m.safetensors: safetensors: header is not valid UTF-8"},
		{"msg.cbor: hostdl: manifest of batch 1 at http://h:1: core: source unavailable: dial tcp: refused", "msg.cbor: manifest of batch 1 at http://h:1: source unavailable: dial tcp: refused"},
		{"hostdl: core: timeout", "timeout"},
		{`hostdl: ServerOptions.Advertise "ftp://x" is not an http:// or https:// base URL`, `-advertise "ftp://x" is not an http:// or https:// base URL`},
		{"hostdl: HostOptions.TLSFiles needs both", "HostOptions.TLS needs both"},
		{"two\nlines:  spaced", "two; lines: spaced"},
		{"score: 3 hostdl: x", "score: 3 hostdl: x"}, // only at the start of a part
	} {
		if got := Message(errors.New(tt.err), flags); got != tt.want {
			t.Errorf("Message(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if got := Message(errors.New("core: x"), nil); got != "x" {
		t.Errorf("without flags: %q", got)
	}
}
