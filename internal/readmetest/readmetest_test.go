package readmetest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const src = "package x\n\nfunc ExampleA() {\n\tfmt.Println(1)\n\n\t// Output: 1\n}\n\nfunc ExampleB() {\n\tfmt.Println(2)\n}\n"

// recorder is a testing.TB that keeps what a check reports.
type recorder struct {
	testing.TB
	failed []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)); runtime.Goexit() }

// check runs ShowsExample on a README of doc and a Go file of src and
// returns what it reported.
func check(t *testing.T, doc, name string) []string {
	dir := t.TempDir()
	readme, file := filepath.Join(dir, "README.md"), filepath.Join(dir, "x_test.go")
	if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); ShowsExample(r, readme, file, name) }()
	<-done
	return r.failed
}

// TestShowsExample: the body up to the Output comment, one tab removed,
// passes as a go block; an edited body, a missing fence, an Example
// without Output or none of that name fail, naming what is missing.
func TestShowsExample(t *testing.T) {
	shown := "# x\n\n```go\nfmt.Println(1)\n```\n"
	if got := check(t, shown, "ExampleA"); len(got) != 0 {
		t.Errorf("shown example failed: %q", got)
	}
	for _, c := range []struct{ doc, name, want string }{
		{"```go\nfmt.Println(2)\n```\n", "ExampleA", "does not show ExampleA"},
		{"fmt.Println(1)\n", "ExampleA", "does not show ExampleA"},
		{shown, "ExampleB", "no ExampleB with an Output comment"},
		{shown, "ExampleC", "no ExampleC with an Output comment"},
	} {
		got := check(t, c.doc, c.name)
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%s against %q: reported %q, want one report with %q", c.name, c.doc, got, c.want)
		}
	}
}
