package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cmdtest"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/arraytest"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// server is a `viacodec serve` running in the background.
type server struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
}

func startServe(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(cmdtest.Path, append([]string{"serve"}, args...)...), done: make(chan struct{})}
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// wait waits for serve to exit and returns its result.
func (s *server) wait(t *testing.T) cmdtest.Result {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		t.Fatal("serve did not end")
	}
	return cmdtest.Result{Stdout: s.stdout.String(), Stderr: s.stderr.String(), Code: s.cmd.ProcessState.ExitCode()}
}

// waitFile waits until serve has written path.
func waitFile(t *testing.T, s *server, path string) []byte {
	t.Helper()
	for range 500 {
		if data, err := os.ReadFile(path); err == nil {
			return data
		}
		select {
		case <-s.done:
			t.Fatalf("serve ended: %s%s", s.stdout.String(), s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not write %s", path)
	return nil
}

// Serve in one process, fetch in another: every format in, every format
// out, bit for bit.
func TestServeFetch(t *testing.T) {
	for _, in := range []tensorfile.Format{tensorfile.Safetensors, tensorfile.NPZ} {
		t.Run(in.String(), func(t *testing.T) {
			dir := t.TempDir()
			ext := "." + in.String()
			file := servedFile(t, in)
			orig := writeFile(t, filepath.Join(dir, "m"+ext), in, file)
			viacodec(t, dir, nil, "pack", "m"+ext, "-o", "packed.cbor").OK(t)
			packed, _ := os.ReadFile(filepath.Join(dir, "packed.cbor"))

			s := startServe(t, dir, "m"+ext, "-o", "msg.cbor", "-receivers", "2", "-timeout", "1m")
			msg := waitFile(t, s, filepath.Join(dir, "msg.cbor"))
			if len(msg) >= len(orig)/2 {
				t.Fatalf("a message of %d bytes for a file of %d: the arrays went inline", len(msg), len(orig))
			}
			r := viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "out"+ext, "-receiver", "first").OK(t)
			if !regexp.MustCompile(`^fetched \S+ \S+ from 1 source in \S+ \([0-9.]+ (?:B|KiB|MiB|GiB)/s\); wrote out` + regexp.QuoteMeta(ext) + "\n$").MatchString(r.Stdout) {
				t.Errorf("fetch printed %q", r.Stdout)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "out"+ext)); !bytes.Equal(got, orig) {
				t.Error("the file fetched differs from the one served")
			}
			// The second receiver, as a message with the arrays inline:
			// what pack makes of the file.
			viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "out.cbor", "-receiver", "second").OK(t)
			if got, _ := os.ReadFile(filepath.Join(dir, "out.cbor")); !bytes.Equal(got, packed) {
				t.Error("the message fetched differs from the one pack makes")
			}

			out := s.wait(t).OK(t).Stdout
			for _, want := range []string{
				fmt.Sprintf("serving %d arrays (", len(file.Tensors)-1), " of m" + ext + " at http://127.0.0.1:", " for 2 receivers; message (", ") on msg.cbor\n",
				"first confirmed: ", "second confirmed: ", "done: 2 of 2 receivers confirmed\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("serve's output has no %q:\n%s", want, out)
				}
			}
		})
	}
}

// servedFile is modelFile with a 4 MiB tensor too: a download of a few
// ranges.
func servedFile(t *testing.T, f tensorfile.Format) *tensorfile.File {
	file := modelFile(t, f)
	big := arraytest.Random(t, rand.New(rand.NewPCG(5, 6)), core.DTypeFloat32, []int{1024, 1024}, core.RowMajor)
	file.Tensors = append([]tensorfile.Tensor{{Name: "big", Array: big}}, file.Tensors...) // name order
	return file
}

// serve | fetch -: the message goes through a pipe, which serve closes
// once it is written; progress and status go to standard error.
func TestServeFetchPipe(t *testing.T) {
	dir := t.TempDir()
	orig := writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, servedFile(t, tensorfile.Safetensors))
	serve := exec.Command(cmdtest.Path, "serve", "m.safetensors", "-timeout", "1m")
	fetch := exec.Command(cmdtest.Path, "fetch", "-", "-o", "-", "-format", "safetensors")
	serve.Dir, fetch.Dir = dir, dir
	pipe, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	fetch.Stdin = pipe
	var serveErr, fetchOut, fetchErr bytes.Buffer
	serve.Stderr, fetch.Stdout, fetch.Stderr = &serveErr, &fetchOut, &fetchErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	if err := fetch.Run(); err != nil {
		serve.Process.Kill()
		t.Fatalf("fetch: %v: %s", err, fetchErr.String())
	}
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve: %v: %s", err, serveErr.String())
	}
	if !bytes.Equal(fetchOut.Bytes(), orig) {
		t.Error("the file fetched differs from the one served")
	}
	if !strings.Contains(fetchErr.String(), "; wrote standard output\n") || !strings.Contains(serveErr.String(), "done: 1 of 1 receivers confirmed\n") {
		t.Errorf("status: fetch %q, serve %q", fetchErr.String(), serveErr.String())
	}
}

// With TLS files both ways: the server presents its certificate and
// accepts only clients the CA signed.
func TestServeFetchMutualTLS(t *testing.T) {
	dir := t.TempDir()
	writePKI(t, dir)
	orig := writeFile(t, filepath.Join(dir, "m.npz"), tensorfile.NPZ, servedFile(t, tensorfile.NPZ))
	s := startServe(t, dir, "m.npz", "-o", "msg.cbor", "-timeout", "1m",
		"-tls-cert", "peer.pem", "-tls-key", "peer.key", "-tls-ca", "ca.pem", "-client-auth")
	waitFile(t, s, filepath.Join(dir, "msg.cbor"))
	viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "out.npz", "-tls-ca", "ca.pem", "-tls-cert", "peer.pem", "-tls-key", "peer.key").OK(t)
	if got, _ := os.ReadFile(filepath.Join(dir, "out.npz")); !bytes.Equal(got, orig) {
		t.Error("the file fetched differs from the one served")
	}
	s.wait(t).OK(t)
	if !strings.Contains(s.stdout.String(), " at https://127.0.0.1:") {
		t.Errorf("serve: %s", s.stdout.String())
	}

	// Without a client certificate, or trusting another CA: refused.
	s = startServe(t, dir, "m.npz", "-o", "msg2.cbor", "-timeout", "1m",
		"-tls-cert", "peer.pem", "-tls-key", "peer.key", "-tls-ca", "ca.pem", "-client-auth")
	waitFile(t, s, filepath.Join(dir, "msg2.cbor"))
	viacodec(t, dir, nil, "fetch", "msg2.cbor", "-o", "no.npz", "-tls-ca", "ca.pem").Fails(t, 1, "viacodec fetch: msg2.cbor: ")
	viacodec(t, dir, nil, "fetch", "msg2.cbor", "-o", "no.npz").Fails(t, 1, "viacodec fetch: msg2.cbor: ")
	s.cmd.Process.Signal(os.Interrupt)
	r := s.wait(t)
	if r.Code != 1 || r.Stderr != "viacodec serve: interrupted: 0 of 1 receivers confirmed\n" {
		t.Fatalf("serve after Ctrl-C: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "no.npz")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed fetch left its output")
	}
}

// writePKI writes ca.pem, and peer.pem and peer.key: a certificate for
// 127.0.0.1 that the CA signed, good for a server and a client.
func writePKI(t *testing.T, dir string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, peerKey := key(), key()
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "viacodec test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(crand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	peerTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "peer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	peerDER, err := x509.CreateCertificate(crand.Reader, peerTmpl, ca, &peerKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(peerKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":   {Type: "CERTIFICATE", Bytes: caDER},
		"peer.pem": {Type: "CERTIFICATE", Bytes: peerDER},
		"peer.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Bad input, a source gone, a timeout: one line on stderr, exit status 1
// (2 for a usage error), and no output left behind.
func TestServeFetchErrors(t *testing.T) {
	dir := t.TempDir()
	orig := writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, modelFile(t, tensorfile.Safetensors))
	os.WriteFile(filepath.Join(dir, "cut.safetensors"), orig[:len(orig)/2], 0o644)
	os.WriteFile(filepath.Join(dir, "junk.cbor"), []byte("not a message at all"), 0o644)
	writeFile(t, filepath.Join(dir, "empty.safetensors"), tensorfile.Safetensors, &tensorfile.File{})

	viacodec(t, dir, nil, "serve", "cut.safetensors", "-o", "out.cbor").Fails(t, 1, "viacodec serve: cut.safetensors: ")
	viacodec(t, dir, nil, "serve", "junk.cbor", "-o", "out.cbor").Fails(t, 1, "viacodec serve: junk.cbor: ")
	viacodec(t, dir, nil, "serve", "missing.npz", "-o", "out.cbor").Fails(t, 1, "no such file or directory")
	viacodec(t, dir, nil, "serve", "empty.safetensors", "-o", "out.cbor").Fails(t, 1, "viacodec serve: empty.safetensors has no array of -ref-threshold bytes or more to serve")
	viacodec(t, dir, nil, "serve", "m.safetensors", "-receivers", "0").Fails(t, 2, "-receivers 0: want 1 or more")
	viacodec(t, dir, nil, "serve", "m.safetensors", "-listen", "256.0.0.1:0", "-o", "out.cbor").Fails(t, 1, "viacodec serve: ")
	viacodec(t, dir, nil, "serve", "m.bin").Fails(t, 2, `cannot tell the format of input "m.bin"`)
	viacodec(t, dir, nil, "serve", "m.safetensors", "-tls-cert", "nope.pem", "-tls-key", "nope.key", "-o", "out.cbor").Fails(t, 1, "viacodec serve: ")
	viacodec(t, dir, nil, "fetch", "junk.cbor", "-o", "out.npz").Fails(t, 1, "viacodec fetch: junk.cbor: ")
	viacodec(t, dir, nil, "fetch", "junk.cbor", "-o", "out.bin").Fails(t, 2, `cannot tell the format of output "out.bin"`)
	viacodec(t, dir, nil, "fetch", "junk.cbor").Fails(t, 2, "give -format for the output on a standard stream")
	assertNoOutput(t, dir)

	// Nobody fetches: serve gives up after -timeout.
	r := viacodec(t, dir, nil, "serve", "m.safetensors", "-o", "msg.cbor", "-timeout", "300ms")
	if r.Code != 1 || r.Stderr != "viacodec serve: timed out after 300ms: 0 of 1 receivers confirmed\n" {
		t.Fatalf("serve -timeout: exit %d, stderr %q", r.Code, r.Stderr)
	}
	// Its message now points to a source that is gone.
	viacodec(t, dir, nil, "fetch", "msg.cbor", "-o", "out.npz", "-timeout", "20s").Fails(t, 1, "viacodec fetch: msg.cbor: ")
	// A message cut short.
	msg, _ := os.ReadFile(filepath.Join(dir, "msg.cbor"))
	os.WriteFile(filepath.Join(dir, "cut.cbor"), msg[:len(msg)-3], 0o644)
	viacodec(t, dir, nil, "fetch", "cut.cbor", "-o", "out.npz").Fails(t, 1, "viacodec fetch: cut.cbor: ")
	assertNoOutput(t, dir)
}

// Beyond loopback serve needs TLS, and says so in its help; a listener
// or advertised name beyond loopback without it is refused, unless
// -allow-cleartext says otherwise. (The test binds loopback only: an
// advertised name elsewhere is enough.)
func TestServeCleartextBeyondLoopback(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m.safetensors"), tensorfile.Safetensors, modelFile(t, tensorfile.Safetensors))
	help := strings.Join(strings.Fields(viacodec(t, dir, nil, "serve", "-h").OK(t).Stdout), " ")
	for _, want := range []string{"[-allow-cleartext]", "Across sites, serve needs TLS", "-allow-cleartext serves plain HTTP"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve -h lacks %q:\n%s", want, help)
		}
	}
	far := "http://viacodec.invalid:9"
	viacodec(t, dir, nil, "serve", "m.safetensors", "-advertise", far, "-o", "msg.cbor").
		Fails(t, 1, `(advertised "`+far+`"): give -tls-cert and -tls-key, or -allow-cleartext`)
	assertOnly(t, dir, "m.safetensors")
	r := viacodec(t, dir, nil, "serve", "m.safetensors", "-advertise", far, "-allow-cleartext", "-o", "msg.cbor", "-timeout", "300ms")
	if r.Code != 1 || r.Stderr != "viacodec serve: timed out after 300ms: 0 of 1 receivers confirmed\n" {
		t.Fatalf("serve -allow-cleartext: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if out := viacodec(t, dir, nil, "inspect", "msg.cbor").OK(t).Stdout; !strings.Contains(out, `"`+far+`"`) {
		t.Fatalf("the message does not name %s:\n%s", far, out)
	}
}

// A transaction that ends before serve gives up says how, in words.
func TestOutcomeError(t *testing.T) {
	for _, tt := range []struct {
		state core.State
		want  string
	}{
		{core.StateTimedOut, "timed out after 2s without a download: 0 of 2 receivers confirmed"},
		{core.StateAborted, "the transfer was aborted: 0 of 2 receivers confirmed"},
		{core.StateDeleted, "the transfer was deleted: 0 of 2 receivers confirmed"},
	} {
		if err := outcomeError(core.Outcome{State: tt.state}, 2, 2*time.Second); err == nil || err.Error() != tt.want {
			t.Errorf("%v: %v, want %q", tt.state, err, tt.want)
		}
	}
	if err := outcomeError(core.Outcome{State: core.StateCompleted}, 2, 0); err != nil {
		t.Errorf("completed: %v", err)
	}
}
