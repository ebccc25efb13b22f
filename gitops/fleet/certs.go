package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/gitops/principal"
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
	out := map[string][]byte{}
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		b, err := os.ReadFile(filepath.Join(tlsDir(wb, name), f))
		if err != nil {
			return nil, err
		}
		out[f] = b
	}
	return out, nil
}

// probeTLS verifies the principal as agents do. It presents the first
// spoke's client certificate, so the principal sees a well-formed client
// rather than a refused handshake; with no spokes, the server's
// certificate alone proves the route.
func probeTLS(wb *cluster.Workbench, spokes []cluster.Cluster) (*tls.Config, error) {
	ptls, err := readTLS(wb, "principal")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ptls["ca.crt"]) {
		return nil, fmt.Errorf("no CA certificate in %s", tlsDir(wb, "principal"))
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: principalServerName, MinVersion: tls.VersionTLS13}
	if len(spokes) > 0 {
		atls, err := readTLS(wb, spokes[0].Name)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(atls["tls.crt"], atls["tls.key"])
		if err != nil {
			return nil, fmt.Errorf("agent certificate of %s: %w", spokes[0].Name, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
