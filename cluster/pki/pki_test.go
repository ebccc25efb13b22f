package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateCAIsStable(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Cert.Equal(second.Cert) {
		t.Fatal("second load made a new CA instead of reading the stored one")
	}
	info, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestIssuedCertificatesVerifyAgainstTheirCAOnly(t *testing.T) {
	ca, _, err := NewCA("a")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := NewCA("b")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(Request{CommonName: "admin", Organizations: []string{"system:masters"}, Client: true, Server: true,
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM); err != nil {
		t.Fatalf("issued pair does not load: %v", err)
	}
	block, _ := pem.Decode(pair.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "admin" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:masters" {
		t.Fatalf("subject = %v", cert.Subject)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(opts); err != nil {
		t.Fatalf("does not verify against its CA: %v", err)
	}
	opts.Roots = other.Pool()
	if _, err := cert.Verify(opts); err == nil {
		t.Fatal("verified against a foreign CA")
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatalf("IP SAN missing: %v", err)
	}
}

func TestIssueRejectsEmptyName(t *testing.T) {
	ca, _, err := NewCA("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(Request{}); err == nil {
		t.Fatal("empty common name accepted")
	}
}
