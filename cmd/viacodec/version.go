package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
)

// runVersion prints viacodec's version, the wire format version, the Go
// release and, from a git checkout, the commit (with "+" if it had
// uncommitted changes).
func runVersion(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	rest, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.Usagef("takes no arguments")
	}
	build := runtime.Version()
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			build += ", commit " + rev + dirty
		}
	}
	fmt.Printf("viacodec %s (wire format %d, %s)\n", core.Version, core.FormatVersion, build)
	return nil
}
