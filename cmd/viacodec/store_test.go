package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/viacodec/viacodec/internal/tensorfile"
	"github.com/viacodec/viacodec/internal/weedtest"
)

// serve -store puts the arrays in an object store (SeaweedFS here, with
// the AWS environment variables pointing at it); fetch reads them from
// there, and the objects are gone once the receiver confirmed.
func TestServeStore(t *testing.T) {
	w := weedtest.Start(t)
	w.SetEnv(t)
	dir := t.TempDir()
	orig := writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, servedFile(t, tensorfile.Safetensors))
	s := startServe(t, dir, "m.safetensors", "-o", "msg.cbor", "-timeout", "1m", "-store", "s3://"+weedtest.Bucket+"/serve-test")
	msg := waitFile(t, s, filepath.Join(dir, "msg.cbor"))
	if !bytes.Contains(msg, []byte("object+"+w.Endpoint+"/"+weedtest.Bucket+"/serve-test/")) || bytes.Contains(msg, []byte(weedtest.SecretKey)) {
		t.Fatal("the message does not point at the store, or carries the secret")
	}
	viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "out.safetensors").OK(t)
	if got, _ := os.ReadFile(filepath.Join(dir, "out.safetensors")); !bytes.Equal(got, orig) {
		t.Error("the file fetched differs from the one served")
	}
	out := s.wait(t).OK(t).Stdout
	if !strings.Contains(out, "the arrays are in s3://"+weedtest.Bucket+"/serve-test") {
		t.Errorf("serve's output:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for o := range w.Client(t).ListObjects(ctx, weedtest.Bucket, minio.ListObjectsOptions{Prefix: "serve-test/", Recursive: true}) {
		t.Errorf("left in the store: %v %v", o.Key, o.Err)
	}
}
