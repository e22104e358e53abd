// Package guestwasm embeds viacodec.wasm, the guest that make wasm builds
// from wasm/guest, so that a program importing the host package wasm gets
// it with no extra step. Its test rebuilds the guest and fails when the
// embedded file is older than its sources (make test runs it).
package guestwasm

import _ "embed"

//go:embed viacodec.wasm
var binary string

// Binary returns a copy of the guest module's bytes.
func Binary() []byte { return []byte(binary) }
