package principal

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/gitops/protocol"
)

// AgentOrganization marks agent client certificates. The workbench CA
// also issues Kubernetes client certificates; only ones carrying this
// organisation are agent identities.
const AgentOrganization = "tether:agents"

// AgentCertificate issues an agent's client certificate.
func AgentCertificate(ca *pki.CA, spoke string) (pki.Pair, error) {
	return ca.Issue(pki.Request{CommonName: spoke, Organizations: []string{AgentOrganization}, Client: true})
}

// ServerTLS is the principal's TLS config: its serving certificate, and
// client certificates required and verified against the workbench CA.
func ServerTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	cert, pool, err := protocol.KeyPairAndCA(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("principal TLS: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// ServerTLSFromDir is ServerTLS of the principal's TLS folder
// (protocol.ReadTLSDir).
func ServerTLSFromDir(dir string) (*tls.Config, error) {
	caPEM, certPEM, keyPEM, err := protocol.ReadTLSDir(dir)
	if err != nil {
		return nil, err
	}
	return ServerTLS(caPEM, certPEM, keyPEM)
}

// agentName returns the agent identity of a verified peer certificate.
func agentName(cert *x509.Certificate) (string, error) {
	for _, o := range cert.Subject.Organization {
		if o == AgentOrganization {
			if cert.Subject.CommonName == "" {
				return "", errors.New("agent certificate has no common name")
			}
			return cert.Subject.CommonName, nil
		}
	}
	return "", fmt.Errorf("certificate %q is not an agent certificate (organisation %q missing)", cert.Subject.CommonName, AgentOrganization)
}
