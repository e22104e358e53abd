// Package readmetest holds README.md's Go snippets to the Example
// functions go test runs: a snippet is an Example's body, word for word,
// so a reader copies code that compiles and prints what it says.
package readmetest

import (
	"os"
	"strings"
	"testing"
)

// ShowsExample fails t unless the Markdown file readme holds, as a go
// code block, the body of func name in the Go file file up to its Output
// comment, one tab of indentation removed.
func ShowsExample(t testing.TB, readme, file, name string) {
	t.Helper()
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := exampleBody(string(src), name)
	if !ok {
		t.Fatalf("%s: no %s with an Output comment", file, name)
	}
	if !strings.Contains(string(doc), "```go\n"+body+"```\n") {
		t.Errorf("%s does not show %s of %s as it is:\n%s", readme, name, file, body)
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
