package hostdl

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/internal/readmetest"
)

// TestReadmeShowsExamples: the Go snippets of README.md are the bodies of
// the Example functions that go test runs, word for word.
func TestReadmeShowsExamples(t *testing.T) {
	readmetest.ShowsExample(t, "../README.md", "../core/example_test.go", "ExampleUnmarshal")
	readmetest.ShowsExample(t, "../README.md", "example_test.go", "Example")
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
