package protocol

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The files of a component's TLS folder: the layout of a kubernetes.io/tls
// Secret mounted in a pod, so the principal and the agents read the same
// folder in kind pods and as embedded child processes.
const (
	CAFile   = "ca.crt"  // the workbench CA, which verifies the peer
	CertFile = "tls.crt" // the component's own certificate
	KeyFile  = "tls.key" // its key
)

// ReadTLSDir reads the CA, certificate and key (PEM) of a component's TLS
// folder.
func ReadTLSDir(dir string) (caPEM, certPEM, keyPEM []byte, err error) {
	read := func(name string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			err = fmt.Errorf("read %s: %w (the TLS folder needs %s, %s and %s)", filepath.Join(dir, name), err, CAFile, CertFile, KeyFile)
		}
		return b
	}
	caPEM, certPEM, keyPEM = read(CAFile), read(CertFile), read(KeyFile)
	return caPEM, certPEM, keyPEM, err
}

// KeyPairAndCA parses what both ends of the stream need for mutual TLS:
// their own certificate and the workbench CA that verifies the other end.
func KeyPairAndCA(caPEM, certPEM, keyPEM []byte) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, errors.New("no CA certificate in the CA file")
	}
	return cert, pool, nil
}
