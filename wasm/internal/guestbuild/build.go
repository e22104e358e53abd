// Package guestbuild builds the wasm guest (wasm/guest): the one
// definition of its build, which make wasm (through the guestwasm test)
// and the host's tests share. Go builds are reproducible: the same
// sources, toolchain and flags give the same bytes, which is how a test
// tells that the embedded guest is older than its sources.
package guestbuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// flags are the guest's build flags: a wasip1 reactor (c-shared), with
// no file paths, version-control stamp or symbol tables in it, so that
// its bytes depend on the sources and the toolchain only.
var flags = []string{"-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-s -w"}

// Build builds the guest of the module rooted at root into the file out,
// with the build tags tags (the tests' guest: "viacodec_debug").
func Build(ctx context.Context, root, out string, tags ...string) error {
	args := append([]string{"build"}, flags...)
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "-o", out, "./wasm/guest")
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=", "GOWASM=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("guestbuild: go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// goTool returns the go command of the toolchain that runs this process
// (the go command sets GOROOT for the programs it runs), or the one on
// PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}
