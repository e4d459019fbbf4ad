package server

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// CertReloader holds a TLS certificate loaded from a certificate and a key
// file, replaced by Reload (on SIGHUP) without dropping connections: each
// new handshake uses the certificate loaded last. Safe for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertReloader loads the PEM certificate (chain) and key.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again; on error the previous certificate stays.
func (r *CertReloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s, key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert.Store(&c)
	return nil
}

// Config returns a server TLS configuration (TLS 1.2 or later) that
// serves the current certificate and offers nextProtos by ALPN ("h2",
// "http/1.1" for HTTP; "h2" for gRPC).
func (r *CertReloader) Config(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}
