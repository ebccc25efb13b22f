package fleet

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/gitops/principal"
	"github.com/tether-dev/tether/gitops/protocol"
)

func writeCertificates(wb *cluster.Workbench, ca *pki.CA, hub cluster.Cluster, spokes []cluster.Cluster) error {
	write := func(name string, pair pki.Pair) error {
		d := tlsDir(wb, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		for f, b := range map[string][]byte{"ca.crt": ca.CertPEM, "tls.crt": pair.CertPEM, "tls.key": pair.KeyPEM} {
			if err := os.WriteFile(filepath.Join(d, f), b, 0o600); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(tlsDir(wb, "principal"), "tls.crt")); err != nil {
		ips := []net.IP{net.ParseIP("127.0.0.1")}
		names := []string{principalServerName, principalServerName + ".cluster.local", "tether-principal", "localhost"}
		// On kind the hub is reached by its node container's name (an IP
		// can change when Docker restarts), on embedded by an address.
		if h := hostOf(hub.InternalEndpoint); h != "" {
			if ip := net.ParseIP(h); ip != nil {
				ips = append(ips, ip)
			} else {
				names = append(names, h)
			}
		}
		pair, err := ca.Issue(pki.Request{CommonName: "tether-principal", Server: true, IPs: ips, DNSNames: names})
		if err != nil {
			return err
		}
		if err := write("principal", pair); err != nil {
			return err
		}
	}
	for _, s := range spokes {
		if _, err := os.Stat(filepath.Join(tlsDir(wb, s.Name), "tls.crt")); err == nil {
			continue
		}
		pair, err := principal.AgentCertificate(ca, s.Name)
		if err != nil {
			return err
		}
		if err := write(s.Name, pair); err != nil {
			return err
		}
	}
	return nil
}

func readTLS(wb *cluster.Workbench, name string) (map[string][]byte, error) {
	ca, cert, key, err := protocol.ReadTLSDir(tlsDir(wb, name))
	if err != nil {
		return nil, err
	}
	return map[string][]byte{protocol.CAFile: ca, protocol.CertFile: cert, protocol.KeyFile: key}, nil
}

// probeTLS verifies the principal as agents do. It presents the first
// spoke's client certificate, so the principal sees a well-formed client
// rather than a refused handshake; with no spokes, the server's
// certificate alone proves the route.
func probeTLS(wb *cluster.Workbench, spokes []cluster.Cluster) (*tls.Config, error) {
	who := "principal"
	if len(spokes) > 0 {
		who = spokes[0].Name
	}
	ca, cert, key, err := protocol.ReadTLSDir(tlsDir(wb, who))
	if err != nil {
		return nil, err
	}
	pair, pool, err := protocol.KeyPairAndCA(ca, cert, key)
	if err != nil {
		return nil, fmt.Errorf("TLS folder of %s: %w", who, err)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: principalServerName, MinVersion: tls.VersionTLS13}
	if len(spokes) > 0 {
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
