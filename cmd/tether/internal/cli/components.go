package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/agent"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/principal"
)

// Version is tether's version as agents report it.
const Version = "v0.1.0-dev"

// componentFlags are what the principal and the agents both take: the
// cluster they watch, chosen the way kubectl does, and their TLS folder
// (protocol.ReadTLSDir).
type componentFlags struct {
	kube   kubeFlags
	tlsDir string
}

// add registers --context, --namespace and --tls-dir; clusterRole names the
// cluster (hub, spoke) and nsHolds says what the namespace holds there.
func (c *componentFlags) add(cmd *cobra.Command, clusterRole, nsHolds string) {
	cmd.Flags().StringVar(&c.kube.context, "context", "", "kubeconfig context of the "+clusterRole+" (default: current)")
	cmd.Flags().StringVarP(&c.kube.namespace, "namespace", "n", cluster.SystemNamespace, clusterRole+" namespace for "+nsHolds)
	cmd.Flags().StringVar(&c.tlsDir, "tls-dir", deploy.TLSMountPath, "folder with ca.crt, tls.crt and tls.key")
}

func newPrincipal(g *globals) *cobra.Command {
	var c componentFlags
	var listen, httpListen string
	var maxStreamAge time.Duration
	cmd := &cobra.Command{
		Use:   "principal",
		Short: "Run the hub's principal: agents dial it; it mirrors Applications down and status up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.kube.restConfig(g)
			if err != nil {
				return err
			}
			tlsCfg, err := principal.ServerTLSFromDir(c.tlsDir)
			if err != nil {
				return err
			}
			p, err := principal.New(principal.Options{Hub: cfg, Listen: listen, HTTPListen: httpListen, TLS: tlsCfg,
				Namespace: c.kube.namespace, Logger: g.logger(), Version: Version, MaxStreamAge: maxStreamAge})
			if err != nil {
				return err
			}
			return p.Run(cmd.Context())
		},
	}
	c.add(cmd, "hub", "Agent objects")
	cmd.Flags().StringVar(&listen, "listen", ":8443", "gRPC address agents dial")
	cmd.Flags().StringVar(&httpListen, "http", ":8080", "address for /healthz, Prometheus /metrics and the Git push webhook (empty: none)")
	cmd.Flags().DurationVar(&maxStreamAge, "max-stream-age", 0, "end each agent's connection after about this long, so agents follow their Service to a new endpoint (behind kube-proxy an open connection stays with its pod); 0: never")
	return cmd
}

func newAgent(g *globals) *cobra.Command {
	var c componentFlags
	var name, addr, serverName, health string
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a spoke's agent: dial the principal, sync the spoke's Applications, report status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.kube.restConfig(g)
			if err != nil {
				return err
			}
			tlsCfg, err := agent.ClientTLSFromDir(c.tlsDir, serverName)
			if err != nil {
				return err
			}
			cacheDir, err := g.cache()
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Options{Name: name, Spoke: cfg, Principal: addr, TLS: tlsCfg, Namespace: c.kube.namespace,
				CacheDir: filepath.Join(cacheDir, "agent", name), Logger: g.logger(), Version: Version, PollInterval: poll})
			if err != nil {
				return err
			}
			if err := serveHealth(cmd.Context(), health, a.MetricsHandler()); err != nil {
				return err
			}
			if health != "" {
				g.logger().Info("agent serving /healthz and /metrics", "addr", health)
			}
			return a.Run(cmd.Context())
		},
	}
	c.add(cmd, "spoke", "Applications")
	cmd.Flags().StringVar(&health, "health-addr", "", "address for /healthz and Prometheus /metrics (empty: none)")
	cmd.Flags().StringVar(&name, "name", "", "the spoke's name (must match its certificate)")
	cmd.Flags().StringVar(&addr, "principal", "", "the principal's address, host:port")
	cmd.Flags().StringVar(&serverName, "server-name", "tether-principal.tether-system.svc", "name to verify in the principal's certificate")
	cmd.Flags().DurationVar(&poll, "poll", 3*time.Minute, "how often to fetch Git without a push")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("principal")
	return cmd
}

// serveHealth answers /healthz on addr until ctx ends, for readiness
// probes in kind pods and for the workbench's own checks, and /metrics
// with metrics if not nil.
func serveHealth(ctx context.Context, addr string, metrics http.Handler) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("health endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return nil
}
