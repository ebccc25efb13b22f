package cli

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
)

type upFlags struct {
	clustersOnly bool
	wait         time.Duration
	config       string
	provider     string
	hub          string
	spokes       int
	names        []string
	contexts     []string
	nodeImage    string
}

func newUp(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create (or reattach to) the hub and spoke clusters",
		Long: `Create the hub and spoke clusters, or reattach to them if they run already,
restarting any that broke. Each cluster gets a kubeconfig context named
tether-<cluster>. Running it again is safe.

Settings come from tether.yaml (or --config) and then from flags.`,
		Example: `  tether up
  tether up --spokes 3
  tether up --provider embedded --spoke eu --spoke us
  tether up --provider existing --context hub=kind-hub --context spoke-1=kind-a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			recorded, err := wb.RecordedConfig()
			if err != nil {
				return err
			}
			cfg, err := f.resolve(cmd, recorded)
			if err != nil {
				return err
			}
			clusters, st, err := fleet.UpWorkbench(cmd.Context(), fleet.Options{Workbench: wb, Progress: g.progress(), Logger: g.logger(), Wait: f.wait}, cfg, f.clustersOnly)
			printWarnings(g, clusters)
			if err != nil {
				return err
			}
			if st != nil {
				defer printFleet(g, st)
			}
			printUp(g, wb, clusters)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "workbench file (default ./tether.yaml when it exists)")
	fl.BoolVar(&f.clustersOnly, "clusters-only", false, "create the clusters only, without the Git server, principal, agents and sample Applications")
	fl.DurationVar(&f.wait, "wait", 5*time.Minute, "how long to wait for every spoke to be Synced and Healthy")
	fl.StringVar(&f.provider, "provider", "", "where clusters come from: embedded, kind or existing (default kind when a Docker engine answers, else embedded)")
	fl.StringVar(&f.hub, "hub", "", "name of the hub cluster (default hub)")
	fl.IntVar(&f.spokes, "spokes", -1, "number of spokes, named spoke-1 … spoke-N (default 2)")
	fl.StringArrayVar(&f.names, "spoke", nil, "name of a spoke; repeat for more (overrides --spokes)")
	fl.StringArrayVar(&f.contexts, "context", nil, "existing provider: <cluster>=<kubeconfig context>; repeat per cluster")
	fl.StringVar(&f.nodeImage, "node-image", "", "kind provider: node image every node boots, used as is (a local tag works offline); default: tether's offline-built image or kind's default when Docker has one, else kind's pulled, else tether's built offline")
	return cmd
}

// resolve layers the base (cluster.BaseConfig: tether.yaml, else the
// running workbench, else the defaults) and flags. recorded is the
// workbench's record of its clusters (empty when none runs): without it a
// bare `up` would remove a spoke added with `tether spoke add`. The result
// is checked once, by the workbench's Up.
func (f *upFlags) resolve(cmd *cobra.Command, recorded cluster.Config) (cluster.Config, error) {
	cfg, err := cluster.BaseConfig(f.config, recorded)
	if err != nil {
		return cfg, err
	}
	if cmd.Flags().Changed("provider") {
		cfg.Provider = f.provider
	}
	if cmd.Flags().Changed("node-image") {
		cfg.Kind.NodeImage = f.nodeImage
	}
	if f.hub != "" {
		cfg.Hub.Name = f.hub
	}
	if len(f.names) > 0 && cmd.Flags().Changed("spokes") {
		return cfg, fmt.Errorf("--spoke and --spokes both given: use --spoke to name spokes or --spokes to count them")
	}
	switch {
	case len(f.names) > 0:
		cfg.Spokes = nil
		for _, n := range f.names {
			cfg.Spokes = append(cfg.Spokes, cluster.ClusterConfig{Name: n})
		}
	case cmd.Flags().Changed("spokes"):
		if f.spokes < 0 || f.spokes > 50 {
			return cfg, fmt.Errorf("--spokes %d: give a number from 0 to 50", f.spokes)
		}
		cfg.Spokes = cluster.SpokeNames(f.spokes)
	}
	for _, kv := range f.contexts {
		name, ctx, ok := strings.Cut(kv, "=")
		if !ok || name == "" || ctx == "" {
			return cfg, fmt.Errorf("--context %q: write it as <cluster>=<kubeconfig context>, e.g. --context hub=kind-hub", kv)
		}
		found := false
		if cfg.Hub.Name == name {
			cfg.Hub.Context, found = ctx, true
		}
		for i := range cfg.Spokes {
			if cfg.Spokes[i].Name == name {
				cfg.Spokes[i].Context, found = ctx, true
			}
		}
		if !found {
			return cfg, fmt.Errorf("--context %q: there is no cluster named %q (clusters: %s)", kv, name, clusterNames(cfg))
		}
	}
	return cfg, nil
}

func clusterNames(cfg cluster.Config) string {
	var names []string
	for _, c := range cfg.Clusters() {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

func printFleet(g *globals, st *fleet.State) {
	hidden := false
	if hostReaches(g.goos, st.Provider, st.Principal) && hostReaches(g.goos, st.Provider, st.GitURL) {
		fmt.Fprintf(g.out, "\nGitOps: principal at %s, sample repository %s\n", st.Principal, st.GitURL)
	} else {
		hidden = true
		fmt.Fprintf(g.out, "\nGitOps: the principal and the sample repository run on the hub, on the kind network\n")
	}
	if st.PrincipalService != "" && hostReaches(g.goos, st.Provider, st.PrincipalService) {
		// What agents dial: intercepting this Service moves them.
		fmt.Fprintf(g.out, "Agents dial the principal's Service hub/tether-system/tether-principal:8443 at %s\n", st.PrincipalService)
	}
	if st.PrincipalServiceHTTP != "" && hostReaches(g.goos, st.Provider, st.PrincipalServiceHTTP) {
		fmt.Fprintf(g.out, "The Git server posts pushes to its port 8080 at %s\n", st.PrincipalServiceHTTP)
	}
	if hidden {
		fmt.Fprintln(g.out, kindNetworkNote(g.goos))
	}
	if len(st.SampleServices) > 0 {
		fmt.Fprintf(g.out, "The sample's Service web:80 on each spoke, from this machine (tether sample url <spoke>):\n")
		for _, name := range st.Spokes {
			fmt.Fprintf(g.out, "      curl http://%s/   # %s\n", st.SampleServices[name], name)
		}
	}
	fmt.Fprintf(g.out, "Every spoke's sample Application is Synced and Healthy on the hub:\n")
	fmt.Fprintf(g.out, "      kubectl --context tether-hub get applications -A\n      kubectl --context tether-hub get agents -n tether-system\n")
}

// printWarnings says, one line each, what of the configuration the
// clusters do not follow (a pinned apiServerPort a running cluster keeps
// another port than), after the GitOps system's progress and before the
// summary, also when the GitOps system failed.
func printWarnings(g *globals, clusters []cluster.Cluster) {
	for _, c := range clusters {
		for _, w := range c.Warnings {
			fmt.Fprintf(g.errw, "warning: %s\n", w)
		}
	}
}

func printUp(g *globals, wb *cluster.Workbench, clusters []cluster.Cluster) {
	if len(clusters) == 0 {
		fmt.Fprintln(g.out, "The workbench has no clusters.")
		return
	}
	fmt.Fprintf(g.out, "\nThe workbench is up (%s provider).\n\n", clusters[0].Provider)
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tROLE\tAPI SERVER\tCONTEXT")
	hidden := false
	for _, c := range clusters {
		endpoint := c.Endpoint
		if !hostReaches(g.goos, c.Provider, endpoint) {
			endpoint, hidden = "(kind network only)", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Role, endpoint, c.Context)
	}
	_ = tw.Flush()
	if hidden {
		fmt.Fprintln(g.out, kindNetworkNote(g.goos))
	}
	fmt.Fprintf(g.out, "\nKubeconfig: %s\n", wb.KubeconfigPath())
	fmt.Fprintf(g.out, "State and logs: %s\n", wb.StateDir())
	last := clusters[len(clusters)-1]
	fmt.Fprintf(g.out, "\nTry:  kubectl --context %s get nodes\n      tether status\n      tether down\n", last.Context)
}

// hostReaches reports whether this machine can reach addr (a URL or
// host:port) of a cluster of the given provider. On Linux the kind network
// is a bridge on the host, so its addresses are reachable; on macOS and
// Windows Docker runs in a VM, and only the ports it forwards to loopback
// are. Other providers' addresses are whatever the user gave or loopback.
func hostReaches(goos, provider, addr string) bool {
	if provider != cluster.ProviderKind || (goos != "darwin" && goos != "windows") {
		return true
	}
	host := addr
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// kindNetworkNote says why addresses are missing from up's output.
func kindNetworkNote(goos string) string {
	return fmt.Sprintf("(Addresses on the kind network are not shown: that network is not routable from this host on %s, where Docker runs in a VM. Use the loopback addresses, the tether-* contexts, or kubectl port-forward.)", goos)
}
