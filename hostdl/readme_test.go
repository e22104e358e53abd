package hostdl

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeShowsExamples: the Go snippets of README.md are the bodies of
// the Example functions that go test runs, word for word.
func TestReadmeShowsExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, name string }{
		{"../core/example_test.go", "ExampleUnmarshal"},
		{"example_test.go", "Example"},
	} {
		src, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		body, ok := exampleBody(string(src), c.name)
		if !ok {
			t.Fatalf("%s: no %s with an Output comment", c.file, c.name)
		}
		if !strings.Contains(string(readme), "```go\n"+body+"```\n") {
			t.Errorf("README.md does not show %s of %s as it is:\n%s", c.name, c.file, body)
		}
	}
}

// TestReadmeDropsNoError: a reader copies README.md's Go snippets, so
// none of them drops an error with _.
func TestReadmeDropsNoError(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dropped := regexp.MustCompile(`(?m)^.*(?:, _|^\s*_) :?= .*$`)
	blocks := strings.Split(string(readme), "```go\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go snippet")
	}
	for _, b := range blocks {
		code, _, _ := strings.Cut(b, "```")
		for _, line := range dropped.FindAllString(code, -1) {
			t.Errorf("README.md drops an error: %s", strings.TrimSpace(line))
		}
	}
}

// exampleBody returns the body of func name in src up to its Output
// comment, one tab of indentation removed.
func exampleBody(src, name string) (string, bool) {
	_, rest, ok := strings.Cut(src, "\nfunc "+name+"() {\n")
	if !ok {
		return "", false
	}
	body, _, ok := strings.Cut(rest, "\t// Output:")
	if !ok {
		return "", false
	}
	lines := strings.SplitAfter(strings.TrimRight(body, "\n")+"\n", "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	return strings.Join(lines, ""), true
}
