// Command weedserve starts one `weed mini` on loopback as the Go tests do
// (weedtest.Launch: the flags live there once), for the tests of other
// languages: it prints one line of JSON, the S3 endpoint and the identity
// and bucket the store accepts, and stops weed when its standard input
// closes (the test that started it ended, or died).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/viacodec/viacodec/internal/weedtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "weedserve:", err)
		os.Exit(1)
	}
}

func run() error {
	bin, err := weedtest.BinaryPath()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "weedserve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w, err := weedtest.Launch(bin, dir)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]string{
		"endpoint": w.Endpoint, "access_key": weedtest.AccessKey, "secret_key": weedtest.SecretKey,
		"bucket": weedtest.Bucket, "region": "us-east-1",
	})
	fmt.Printf("%s\n", line)
	io.Copy(io.Discard, os.Stdin) // until the test closes it
	return w.Stop()
}
