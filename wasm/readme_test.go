package wasm

import (
	"testing"

	"github.com/viacodec/viacodec/internal/readmetest"
)

// TestReadmeShowsExample: the README's snippet of a source in the guest
// is the body of ExampleRuntime_NewTable, which go test runs, word for
// word.
func TestReadmeShowsExample(t *testing.T) {
	readmetest.ShowsExample(t, "../README.md", "example_test.go", "ExampleRuntime_NewTable")
}
