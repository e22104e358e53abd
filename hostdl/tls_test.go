package hostdl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate (Subject CN "client"), all made in the test, with their PEM
// files; client hands out more client certificates.
type testPKI struct {
	caPool                *x509.CertPool
	server, client        tls.Certificate
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string

	t      *testing.T
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &testPKI{caPool: x509.NewCertPool(), t: t, dir: dir, ca: ca, caKey: caKey, serial: 1}
	p.caPool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	p.server, p.serverCert, p.serverKey = p.leaf("server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.client, p.clientCert, p.clientKey = p.leaf("client", x509.ExtKeyUsageClientAuth, nil)
	return p
}

// leaf makes a certificate with Subject CN cn that the CA signed, and its
// PEM files.
func (p *testPKI) leaf(cn string, usage x509.ExtKeyUsage, ips []net.IP) (cert tls.Certificate, certFile, keyFile string) {
	t := p.t
	t.Helper()
	p.serial++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	name := fmt.Sprintf("leaf%d", p.serial)
	certFile = writePEM(t, p.dir, name+".pem", "CERTIFICATE", der)
	keyFile = writePEM(t, p.dir, name+".key", "EC PRIVATE KEY", keyDER)
	if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

// clientConfig returns a client TLS config that trusts p's CA and presents
// a client certificate named cn.
func (p *testPKI) clientConfig(cn string) *tls.Config {
	cert, _, _ := p.leaf(cn, x509.ExtKeyUsageClientAuth, nil)
	return &tls.Config{RootCAs: p.caPool, Certificates: []tls.Certificate{cert}}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// downloadOnce publishes a small model on srv and decodes it with c.
func downloadOnce(t *testing.T, table *core.Table, srv *Server, c *Client) error {
	t.Helper()
	mdl := newModel(3<<20, 2, 20)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	defer tx.Abort()
	v, err := decoder(t, c).Decode(msg)
	if err != nil {
		return err
	}
	return mdl.check(v)
}

// TestTLS: HTTPS from PEM files and from a *tls.Config, over HTTP/1.1 and
// HTTP/2 (ALPN); a client that does not trust the server's CA is KindAuth.
func TestTLS(t *testing.T) {
	pki := newPKI(t, "tls")
	table := newTable(t)
	for _, o := range []ServerOptions{
		{TLSFiles: TLSFiles{CertFile: pki.serverCert, KeyFile: pki.serverKey}},
		{TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}}},
	} {
		srv := startServer(t, table, o)
		if got := srv.Source()[:8]; got != "https://" {
			t.Fatalf("Source %q", srv.Source())
		}
		for _, proto := range []Protocol{HTTP1, HTTP2} {
			before := srv.Stats().HTTP2Requests
			c := newTestClient(t, ClientOptions{Protocol: proto, TLSFiles: TLSFiles{CAFile: pki.caFile}})
			if err := downloadOnce(t, table, srv, c); err != nil {
				t.Fatalf("protocol %d: %v", proto, err)
			}
			if h2 := srv.Stats().HTTP2Requests > before; h2 != (proto == HTTP2) {
				t.Errorf("protocol %d: HTTP/2 used: %v", proto, h2)
			}
		}
		other := newPKI(t, "other")
		c := newTestClient(t, ClientOptions{TLS: &tls.Config{RootCAs: other.caPool}, Retries: -1})
		wantKind(t, downloadOnce(t, table, srv, c), core.KindAuth)
		plain := newTestClient(t, ClientOptions{Retries: -1})
		err := plain.Fetch(t.Context(), core.BatchRef{Source: "http://" + srv.Addr().String()}, nil)
		if err == nil {
			t.Error("cleartext request to a TLS server succeeded")
		}
	}
}

// TestMutualTLS: with a CA file the server requires a client certificate:
// a client with one downloads, one without is refused with KindAuth.
func TestMutualTLS(t *testing.T) {
	pki := newPKI(t, "mtls")
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{TLSFiles: TLSFiles{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile}})
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		c := newTestClient(t, ClientOptions{Protocol: proto, TLSFiles: TLSFiles{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}})
		if err := downloadOnce(t, table, srv, c); err != nil {
			t.Fatalf("protocol %d with a client certificate: %v", proto, err)
		}
	}
	cfg := &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.client}}
	if err := downloadOnce(t, table, srv, newTestClient(t, ClientOptions{TLS: cfg})); err != nil {
		t.Fatalf("client *tls.Config: %v", err)
	}
	anon := newTestClient(t, ClientOptions{TLSFiles: TLSFiles{CAFile: pki.caFile}, Retries: -1})
	wantKind(t, downloadOnce(t, table, srv, anon), core.KindAuth)
	stranger := newPKI(t, "stranger")
	bad := newTestClient(t, ClientOptions{TLS: &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{stranger.client}}, Retries: -1})
	wantKind(t, downloadOnce(t, table, srv, bad), core.KindAuth)
}
