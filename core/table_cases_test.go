package core_test

import (
	"testing"

	"github.com/viacodec/viacodec/internal/tabletest"
)

// TestTableCases runs the table cases that the wasm host's guest-backed
// table shares (internal/tabletest) on core's Table.
func TestTableCases(t *testing.T) {
	tabletest.Run(t, tabletest.NativeMaker)
}
