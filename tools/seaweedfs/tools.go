//go:build tools

// Package tools pins the SeaweedFS server that the S3 holder's tests run
// against (weed mini on loopback). It is a module of its own so the main
// module's go.mod never carries SeaweedFS's dependencies; `make weed`
// builds the binary into .tools/bin.
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
