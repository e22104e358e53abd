package hostdl

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/viacodec/viacodec/core"
)

// TLSFiles names PEM files for TLS. On a Server, CertFile and KeyFile are
// its certificate and key, and CAFile, when set, turns on mutual TLS: every
// client must present a certificate that CA signed. On a Client, CAFile is
// the CA that signs servers (default: the system roots), and CertFile and
// KeyFile are the client certificate for mutual TLS.
type TLSFiles struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

func (f TLSFiles) isZero() bool { return f == TLSFiles{} }

// serverTLS returns the server's TLS config: a clone of c, or one built from
// files, or nil for cleartext.
func serverTLS(c *tls.Config, f TLSFiles) (*tls.Config, error) {
	switch {
	case c != nil && !f.isZero():
		return nil, errors.New("hostdl: set ServerOptions.TLS or ServerOptions.TLSFiles, not both")
	case c != nil:
		c = c.Clone()
		if len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
			return nil, errors.New("hostdl: ServerOptions.TLS has no certificate")
		}
		return c, tlsFloor(c, "ServerOptions")
	case f.isZero():
		return nil, nil
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("hostdl: ServerOptions.TLSFiles needs CertFile and KeyFile")
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("hostdl: server certificate: %w", err)
	}
	c = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pool, err := loadPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// clientTLS returns the client's TLS config: a clone of c, or one built from
// files, or nil for the system defaults.
func clientTLS(c *tls.Config, f TLSFiles) (*tls.Config, error) {
	switch {
	case c != nil && !f.isZero():
		return nil, errors.New("hostdl: set ClientOptions.TLS or ClientOptions.TLSFiles, not both")
	case c != nil:
		c = c.Clone()
		return c, tlsFloor(c, "ClientOptions")
	case f.isZero():
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	c = &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pool, err := loadPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("hostdl: ClientOptions.TLSFiles needs both CertFile and KeyFile, or neither")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("hostdl: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// tlsFloor holds c to TLS 1.2 or later: it raises MinVersion, and a
// MaxVersion below 1.2 is an error.
func tlsFloor(c *tls.Config, typ string) error {
	if c.MaxVersion != 0 && c.MaxVersion < tls.VersionTLS12 {
		return fmt.Errorf("hostdl: %s.TLS allows at most %s; TLS 1.2 is the minimum", typ, tls.VersionName(c.MaxVersion))
	}
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	// GetConfigForClient may hand out other configs: hold them too.
	if get := c.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			cc, err := get(h)
			if err != nil || cc == nil {
				return cc, err
			}
			cc = cc.Clone()
			if cc.MaxVersion != 0 && cc.MaxVersion < tls.VersionTLS12 {
				return nil, fmt.Errorf("hostdl: a config from GetConfigForClient allows at most %s", tls.VersionName(cc.MaxVersion))
			}
			cc.MinVersion = max(cc.MinVersion, tls.VersionTLS12)
			return cc, nil
		}
	}
	return nil
}

// certReceiver returns the receiver id a client with config c has under
// mutual TLS: its first certificate's Subject CN, or "" when it has none
// or the CN is not a valid receiver id.
func certReceiver(c *tls.Config) string {
	if c == nil || len(c.Certificates) == 0 || len(c.Certificates[0].Certificate) == 0 {
		return ""
	}
	leaf := c.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificates[0].Certificate[0]); err != nil {
			return ""
		}
	}
	if cn := leaf.Subject.CommonName; core.ValidReceiverID(cn) {
		return cn
	}
	return ""
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("hostdl: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("hostdl: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
