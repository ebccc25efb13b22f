package catalog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/gitops/agent"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/principal"
	"github.com/tether-dev/tether/gitops/protocol"
)

// principalServerName is the name in the principal's certificate.
const principalServerName = "tether-principal.tether-system.svc"

func agentIsolation() Scenario {
	return Scenario{
		Name:        "agent-isolation",
		Description: "an agent's certificate reaches only its own spoke's Applications, and a certificate from another CA is refused",
		// On kind it dials the principal's NodePort on the hub node's
		// address, which a Linux host reaches; Docker Desktop (macOS,
		// Windows) routes no container address to the host, and the
		// first dial says so.
		Labels:  []string{LabelFleet, LabelFast},
		Timeout: 3 * time.Minute,
		Steps: func(e *Env) []Step {
			own, other := e.Spokes()[0], e.Spokes()[1]
			tlsDir := func(spoke string) string { return filepath.Join(e.Workbench().StateDir, "fleet", "tls", spoke) }
			// Where this machine reaches the principal, as an impostor on
			// the network would.
			var addr string
			return []Step{
				{Name: "an Application only " + other + " has", Run: func(ctx context.Context) error {
					if err := createHubApp(ctx, e, other, "scn-isolated", "plain", "scn-isolated", nil); err != nil {
						return err
					}
					return eventually(ctx, time.Minute, other+" received scn-isolated", func(ctx context.Context) error {
						_, err := spokeApp(ctx, e, other, "scn-isolated")
						return err
					})
				}},
				{Name: own + "'s certificate is sent only " + own + "'s Applications and cannot write " + other + "'s", Run: func(ctx context.Context) error {
					var err error
					if addr, err = principalFromHere(ctx, e); err != nil {
						return err
					}
					s, closeFn, err := rawAgent(ctx, tlsDir(own), addr)
					if err != nil {
						return err
					}
					defer closeFn()
					if err := s.Send(&protocol.Message{Hello: &protocol.Hello{Version: "scenario", Mode: protocol.ModeManaged, Apps: map[string]string{}}}); err != nil {
						return fmt.Errorf("hello as %s: %w (principal log %s)", own, err, e.ComponentLog("principal"))
					}
					forged := &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusSynced, Revision: "forged"}}
					if err := s.Send(&protocol.Message{Seq: 1, Status: &protocol.StatusUpdate{Name: "scn-isolated", Status: forged}}); err != nil {
						return fmt.Errorf("send a forged status: %w", err)
					}
					seen := map[string]bool{}
					deadline := time.Now().Add(3 * time.Second)
					for time.Now().Before(deadline) {
						m, err := recvTimeout(s, time.Until(deadline))
						if err != nil {
							break
						}
						if m.App != nil {
							seen[m.App.Name] = true
						}
					}
					if !seen[fleet.SampleApp] {
						return fmt.Errorf("a stream with %s's certificate was not sent its own Application %q (got %v); principal log %s", own, fleet.SampleApp, seen, e.ComponentLog("principal"))
					}
					if seen["scn-isolated"] {
						return fmt.Errorf("%s's certificate was sent %s's Application scn-isolated; principal log %s", own, other, e.ComponentLog("principal"))
					}
					iso, err := hubApp(ctx, e, other, "scn-isolated")
					if err != nil {
						return err
					}
					if iso.Status.Sync.Revision == "forged" {
						return fmt.Errorf("%s's certificate wrote the status of hub Application %s/scn-isolated", own, other)
					}
					return nil
				}},
				{Name: "a certificate from another CA is refused", Run: func(ctx context.Context) error {
					foreign, _, err := pki.NewCA("someone else")
					if err != nil {
						return err
					}
					pair, err := principal.AgentCertificate(foreign, own)
					if err != nil {
						return err
					}
					dir := filepath.Join(e.Dir(), "tls-foreign")
					workbenchCA, err := os.ReadFile(filepath.Join(tlsDir(own), protocol.CAFile))
					if err != nil {
						return fmt.Errorf("read the workbench CA: %w", err)
					}
					// Trust the real principal, but present the foreign identity.
					if err := writeTLS(dir, workbenchCA, pair); err != nil {
						return err
					}
					// Only what the principal logs from now on counts: its log
					// outlives scenario runs on the same workbench.
					logged, err := logFromNow(ctx, e, "principal")
					if err != nil {
						return err
					}
					if addr == "" {
						if addr, err = principalFromHere(ctx, e); err != nil {
							return err
						}
					}
					s, closeFn, err := rawAgent(ctx, dir, addr)
					if err == nil {
						defer closeFn()
						err = s.Send(&protocol.Message{Hello: &protocol.Hello{Mode: protocol.ModeManaged}})
						if err == nil {
							_, err = recvTimeout(s, 5*time.Second)
						}
					}
					if err == nil {
						return fmt.Errorf("a certificate from another CA got a stream from the principal through %s", addr)
					}
					const refused = "agent refused: certificate not issued by the workbench CA"
					return eventually(ctx, 10*time.Second, "the refusal logged", func(ctx context.Context) error {
						if strings.Contains(logged(ctx), refused) {
							return nil
						}
						return fmt.Errorf("principal log %s does not say %q", e.ComponentLog("principal"), refused)
					})
				}},
				{Name: "the real agents stay connected and Synced", Run: func(ctx context.Context) error {
					return eventually(ctx, 90*time.Second, "agents connected, sample Synced", func(ctx context.Context) error {
						for _, s := range e.Spokes() {
							if err := agentConnected(ctx, e, s); err != nil {
								return err
							}
						}
						return sampleSyncedAt(ctx, e, "")
					})
				}},
			}
		},
	}
}

// principalFromHere is the principal as this machine dials it: the
// Service's address agents dial (embedded), the NodePort on the hub
// node's address (kind: agents dial the node by a name only Docker's DNS
// on the kind network resolves).
func principalFromHere(ctx context.Context, e *Env) (string, error) {
	if e.Kind() {
		return kindPrincipalFromHost(ctx, e)
	}
	return agentTarget(e), nil
}

// agentTarget is the address an agent dials: the principal's Service
// (the embedded service proxy's pinned address), which is what an
// impostor on the network would reach too; the process's own address
// only on a workbench whose up recorded no Service.
func agentTarget(e *Env) string {
	if st := e.Fleet(); st.PrincipalService != "" {
		return st.PrincipalService
	}
	return e.Fleet().Principal
}

// writeTLS writes a component TLS folder (protocol.ReadTLSDir).
func writeTLS(dir string, caPEM []byte, pair pki.Pair) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{protocol.CAFile: caPEM, protocol.CertFile: pair.CertPEM, protocol.KeyFile: pair.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// rawAgent opens a protocol stream with the identity in dir, the way a
// hostile or buggy agent would. A refused handshake may show as an error
// here or on the first Send/Recv.
func rawAgent(ctx context.Context, dir, addr string) (protocol.Stream, func(), error) {
	tlsCfg, err := agent.ClientTLSFromDir(dir, principalServerName)
	if err != nil {
		return nil, nil, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s, err := protocol.Dial(sctx, cc)
	if err != nil {
		cancel()
		cc.Close()
		return nil, nil, err
	}
	return s, func() { cancel(); cc.Close() }, nil
}

func recvTimeout(s protocol.Stream, d time.Duration) (*protocol.Message, error) {
	type result struct {
		m   *protocol.Message
		err error
	}
	ch := make(chan result, 1)
	go func() { m, err := s.Recv(); ch <- result{m, err} }()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("no message within %s", d)
	}
}
