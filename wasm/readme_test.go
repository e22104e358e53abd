package wasm

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsExample: the README's snippet of a source in the guest
// is the body of ExampleRuntime_NewTable, which go test runs, word for
// word.
func TestReadmeShowsExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "\nfunc ExampleRuntime_NewTable() {\n")
	body, _, ok2 := strings.Cut(rest, "\t// Output:")
	if !ok || !ok2 {
		t.Fatal("no ExampleRuntime_NewTable with an Output comment")
	}
	lines := strings.SplitAfter(strings.TrimRight(body, "\n")+"\n", "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	if want := "```go\n" + strings.Join(lines, "") + "```\n"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show ExampleRuntime_NewTable as it is:\n%s", want)
	}
}
