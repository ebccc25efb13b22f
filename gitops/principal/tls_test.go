package principal

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/tether-dev/tether/cluster/pki"
)

func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := tls.Server(a, serverCfg)
		serverErr = s.Handshake()
		if serverErr == nil {
			// TLS 1.3 verifies the client after the client thinks it is
			// done; a read surfaces the verdict on both ends.
			_, _ = s.Write([]byte("x"))
		}
		s.Close()
	}()
	c := tls.Client(b, clientCfg)
	clientErr = c.Handshake()
	if clientErr == nil {
		buf := make([]byte, 1)
		_, clientErr = c.Read(buf)
	}
	c.Close()
	wg.Wait()
	return serverErr, clientErr
}

func TestVerifyingTLSAcceptsAgentsOfTheWorkbenchCAAndLogsEveryRefusal(t *testing.T) {
	ca, _, err := pki.NewCA("workbench")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := pki.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Issue(pki.Request{CommonName: "tether-principal", Server: true, DNSNames: []string{"principal"}})
	if err != nil {
		t.Fatal(err)
	}
	base, err := ServerTLS(ca.CertPEM, serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := AgentCertificate(ca, "spoke-1")
	foreign, _ := AgentCertificate(other, "spoke-1")
	admin, _ := ca.Issue(pki.Request{CommonName: "tether-admin", Organizations: []string{"system:masters"}, Client: true})

	cases := []struct {
		name    string
		pair    pki.Pair
		wantErr bool
		wantLog string
	}{
		{"agent of the workbench CA", good, false, ""},
		{"agent certificate from another CA", foreign, true, "certificate not issued by the workbench CA"},
		{"workbench certificate that is not an agent's", admin, true, `is not an agent certificate`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			p := &Principal{opts: Options{TLS: base}, log: slog.New(slog.NewTextHandler(&logs, nil))}
			clientCfg, err := clientTLS(ca.CertPEM, tc.pair)
			if err != nil {
				t.Fatal(err)
			}
			serverErr, clientErr := handshake(t, p.verifyingTLS(), clientCfg)
			if tc.wantErr {
				if serverErr == nil && clientErr == nil {
					t.Fatal("handshake succeeded")
				}
				if !strings.Contains(logs.String(), tc.wantLog) {
					t.Fatalf("log lacks %q:\n%s", tc.wantLog, logs.String())
				}
				return
			}
			if serverErr != nil || clientErr != nil {
				t.Fatalf("handshake failed: server %v, client %v", serverErr, clientErr)
			}
		})
	}
}

func clientTLS(caPEM []byte, pair pki.Pair) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: x509Pool(caPEM), ServerName: "principal", MinVersion: tls.VersionTLS13}, nil
}

func x509Pool(pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemBytes)
	return p
}
