package abihost

import (
	"strings"
	"testing"

	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/leakcheck"
)

// TestMain fails the run when goroutines outlive the tests: every host,
// download and wait the tests start must be gone once they are released.
func TestMain(m *testing.M) {
	leakcheck.Main(m, func() {
		if defaultClient.c != nil { // the library's client lives as long as the process
			defaultClient.c.Close()
		}
	})
}

// TestHostErrorText: a host's error reads as the export layer's do, without
// the Go package that raised it.
func TestHostErrorText(t *testing.T) {
	_, err := NewHost(HostOptions{ChunkSize: 3})
	if err == nil {
		t.Fatal("chunk size 3 accepted")
	}
	if text := abi.Text(err); strings.Contains(text, "hostdl:") || !strings.HasPrefix(text, "viacodec: host: ") {
		t.Errorf("Text = %q", text)
	}
}
