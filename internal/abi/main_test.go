package abi

import (
	"testing"

	"github.com/viacodec/viacodec/internal/leakcheck"
)

// TestMain fails the run when goroutines outlive the tests: every
// download and wait the tests start must be gone once they are released.
func TestMain(m *testing.M) { leakcheck.Main(m, nil) }
