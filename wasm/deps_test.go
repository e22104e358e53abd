package wasm

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNetworkLinked: the wasm host runs a sandbox that has no network,
// and links none: neither it nor its guest depends on hostdl (HTTP, TLS),
// which capi's host (capi/internal/abihost) alone brings in.
func TestNoNetworkLinked(t *testing.T) {
	for _, c := range []struct{ pkg, goos string }{{".", ""}, {"./guest", "wasip1"}} {
		cmd := exec.Command("go", "list", "-deps", c.pkg)
		if c.goos != "" {
			cmd.Env = append(cmd.Environ(), "GOOS="+c.goos, "GOARCH=wasm")
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", c.pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed %d packages", c.pkg, len(deps))
		}
		for _, d := range deps {
			if strings.HasSuffix(d, "/hostdl") || d == "net/http" || d == "crypto/tls" {
				t.Errorf("go list -deps %s holds %s", c.pkg, d)
			}
		}
	}
}
