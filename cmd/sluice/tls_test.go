package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// common name to dir/cert.pem and dir/key.pem and returns it.
func writeCert(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestServeTLS: with --tls-cert/--tls-key, HTTP and gRPC are served over
// TLS with the generated certificate; SIGHUP reloads a replaced one; a
// bad pair is a usage error before anything loads.
func TestServeTLS(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	dir := t.TempDir()
	first := writeCert(t, dir, "first")
	hup := make(chan os.Signal, 1)
	old := serveHUP
	serveHUP = func() (<-chan os.Signal, func()) { return hup, func() {} }
	t.Cleanup(func() { serveHUP = old })
	gport := freePort(t)
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--offline", "--grpc-port", strconv.Itoa(gport),
		"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	if !strings.HasPrefix(sv.base, "https://") {
		t.Fatalf("listening on %s", sv.base)
	}
	pool := x509.NewCertPool()
	pool.AddCert(first)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(sv.base + "/v1/models")
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Errorf("HTTPS: %d %+v", resp.StatusCode, resp.TLS)
	}
	if _, err := http.Get(sv.base + "/health"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client that does not trust the certificate: %v", err)
	}

	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(gport), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pb.NewSluiceClient(cc).ListModels(ctx, &pb.ListModelsRequest{}); err != nil {
		t.Errorf("gRPC over TLS: %v", err)
	}

	second := writeCert(t, dir, "second")
	hup <- syscall.SIGHUP
	pool.AddCert(second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", strings.TrimPrefix(sv.base, "https://"), &tls.Config{RootCAs: pool})
		if err == nil {
			cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName
			c.Close()
			if cn == "second" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificate was not reloaded on SIGHUP: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sv.stop(t)

	os.WriteFile(filepath.Join(dir, "key.pem"), []byte("not a key"), 0o600)
	err = runServe([]string{"--offline", "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Errorf("bad key: %v", err)
	}
	if _, err := parseServe([]string{"-m", "m", "--tls-cert", "c.pem"}, envOf(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("--tls-cert alone: %v", err)
	}
}
