// Package dirtest looks at what a test's directory holds: the files a
// command or an offload left behind, or did not.
package dirtest

import (
	"os"
	"testing"
)

// Names returns the names of dir's entries, sorted; nil when it is empty.
func Names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
