package cli

import (
	"flag"
	"slices"
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
