package hostdl

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
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
		return c, nil
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
		return c.Clone(), nil
	case f.isZero():
		return nil, nil
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
