package cli

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/appops"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/repo"
)

func newApp(g *globals) *cobra.Command {
	k := &kubeFlags{}
	cmd := &cobra.Command{
		Use:   "app",
		Short: "List, inspect, sync, diff and refresh Applications",
	}
	cmd.PersistentFlags().StringVar(&k.context, "context", "", "kubeconfig context of the cluster (default: current), e.g. tether-spoke-1")
	cmd.PersistentFlags().StringVarP(&k.namespace, "namespace", "n", cluster.SystemNamespace, "namespace holding the Applications (on the hub: the spoke's name, e.g. spoke-1)")
	cmd.AddCommand(appList(g, k), appGet(g, k), appSync(g, k), appRefresh(g, k), appDiff(g, k))
	return cmd
}

// appOps is the Application operations for the cluster of --context, told
// whether it is the workbench's hub: there requests go through the
// principal to the spokes, and a diff reads the spoke.
func (k *kubeFlags) appOps(g *globals) (*appops.Client, error) {
	cfg, err := k.restConfig(g)
	if err != nil {
		return nil, err
	}
	opts := appops.Options{Config: cfg, Logger: g.logger(), InitiatedBy: initiatedBy()}
	if opts.CacheDir, err = g.cache(); err != nil {
		return nil, err
	}
	// A context the workbench does not know is any cluster running its
	// Applications itself: the commands work there as on a spoke.
	if wb, err := g.workbench(); err == nil {
		if name := appops.ClusterOfContext(wb, k.contextName(g)); name != "" {
			opts.Workbench, opts.Cluster = wb, name
			opts.ReachRepo = func(ctx context.Context, repoURL string) (string, func(), error) {
				return fleet.ReachRepo(ctx, wb, repoURL)
			}
		}
	}
	return appops.New(opts)
}

// contextName is the kubeconfig context the commands use: --context, else
// the current one.
func (k *kubeFlags) contextName(g *globals) string {
	if k.context != "" {
		return k.context
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if g.kubeconfig != "" {
		rules.ExplicitPath = g.kubeconfig
	}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).RawConfig()
	if err != nil {
		return ""
	}
	return raw.CurrentContext
}

func initiatedBy() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "tether-cli"
}

// notFound adds where to look to an Application that is not there.
func notFound(err error, ns string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: `tether app list -n %s` shows the ones there are, `tether app list -A` every namespace's", err, ns)
	}
	return err
}

func appList(g *globals, k *kubeFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List Applications with sync status, health and revision",
		Long: "List Applications with sync status, health and revision. On the hub each spoke's\n" +
			"Applications are in the namespace named after it; -A lists every spoke's.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := k.appOps(g)
			if err != nil {
				return err
			}
			ns := k.namespace
			if all {
				ns = metav1.NamespaceAll
			}
			apps, err := c.List(cmd.Context(), ns)
			if err != nil {
				return err
			}
			printAppList(g, apps, all, c.Hub(), k.namespace)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the Applications of every namespace (on the hub: of every spoke)")
	return cmd
}

func printAppList(g *globals, apps []v1alpha1.Application, all, hub bool, ns string) {
	if len(apps) == 0 {
		switch {
		case all:
			fmt.Fprintln(g.out, "No Applications in any namespace.")
		case hub:
			fmt.Fprintf(g.out, "No Applications in namespace %s. On the hub each spoke's Applications are in the namespace named after it: -n <spoke>, or -A for all.\n", ns)
		default:
			fmt.Fprintf(g.out, "No Applications in namespace %s.\n", ns)
		}
		return
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	header := "NAME\tSYNC\tHEALTH\tREVISION\tLAST SYNC\tREPO\tPATH"
	if all {
		// On the hub a namespace is a spoke: say which.
		col := "NAMESPACE"
		if hub {
			col = "SPOKE"
		}
		header = col + "\t" + header
	}
	fmt.Fprintln(tw, header)
	for _, app := range apps {
		last := "-"
		if n := len(app.Status.History); n > 0 {
			last = time.Since(app.Status.History[n-1].DeployedAt.Time).Round(time.Second).String() + " ago"
		}
		if all {
			fmt.Fprintf(tw, "%s\t", app.Namespace)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", app.Name, cmp.Or(app.Status.Sync.Status, "-"), cmp.Or(app.Status.Health.Status, "-"),
			cmp.Or(repo.ShortSHA(app.Status.Sync.Revision), "-"), last, app.Spec.Source.RepoURL, cmp.Or(app.Spec.Source.Path, "-"))
	}
	_ = tw.Flush()
}

func appGet(g *globals, k *kubeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one Application: source, status, resources, conditions, last operation, history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.appOps(g)
			if err != nil {
				return err
			}
			app, err := c.Get(cmd.Context(), k.namespace, args[0])
			if err != nil {
				return notFound(err, k.namespace)
			}
			printApp(g, app)
			return nil
		},
	}
}

func printApp(g *globals, app *v1alpha1.Application) {
	s := app.Status
	fmt.Fprintf(g.out, "Name:         %s/%s\n", app.Namespace, app.Name)
	fmt.Fprintf(g.out, "Source:       %s (revision %s, path %s)\n", app.Spec.Source.RepoURL, cmp.Or(app.Spec.Source.TargetRevision, "-"), cmp.Or(app.Spec.Source.Path, "-"))
	fmt.Fprintf(g.out, "Destination:  namespace %s\n", app.Spec.Destination.Namespace)
	policy := "manual"
	if p := app.Spec.SyncPolicy; p != nil && p.Automated != nil {
		policy = fmt.Sprintf("automated (prune=%t, selfHeal=%t)", p.Automated.Prune, p.Automated.SelfHeal)
	}
	fmt.Fprintf(g.out, "Sync policy:  %s\n", policy)
	fmt.Fprintf(g.out, "Sync:         %s at %s\n", cmp.Or(s.Sync.Status, "-"), cmp.Or(repo.ShortSHA(s.Sync.Revision), "-"))
	health := cmp.Or(s.Health.Status, "-")
	if s.Health.Message != "" {
		health += " (" + s.Health.Message + ")"
	}
	fmt.Fprintf(g.out, "Health:       %s\n", health)
	for _, c := range s.Conditions {
		fmt.Fprintf(g.out, "Condition:    %s: %s\n", c.Type, c.Message)
	}
	if op := s.OperationState; op != nil {
		fmt.Fprintf(g.out, "Last sync:    %s: %s\n", op.Phase, op.Message)
	}
	if len(s.Resources) > 0 {
		fmt.Fprintln(g.out)
		tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tNAMESPACE\tNAME\tSYNC\tHEALTH\tMESSAGE")
		for _, r := range s.Resources {
			h, msg := "-", ""
			if r.Health != nil {
				h, msg = r.Health.Status, r.Health.Message
			}
			sync := r.Status
			if r.RequiresPruning {
				sync += " (prune)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Kind, cmp.Or(r.Namespace, "-"), r.Name, sync, h, msg)
		}
		_ = tw.Flush()
	}
	if len(s.History) > 0 {
		fmt.Fprintln(g.out, "\nHistory:")
		for _, h := range s.History {
			fmt.Fprintf(g.out, "  %d  %s  %s  %s\n", h.ID, repo.ShortSHA(h.Revision), h.DeployedAt.Format(time.RFC3339), h.InitiatedBy)
		}
	}
}

func appSync(g *globals, k *kubeFlags) *cobra.Command {
	var revision string
	var prune, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Request a one-shot sync (optionally at a revision) and wait for its result",
		Long: "Request a one-shot sync (optionally at a revision) and wait for its result. On the hub\n" +
			"the principal carries it to the spoke's agent, and the result comes back on the hub's copy.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.appOps(g)
			if err != nil {
				return err
			}
			ctx, name, ns := cmd.Context(), args[0], k.namespace
			id, err := c.Sync(ctx, ns, name, appops.SyncRequest{Revision: revision, Prune: prune})
			if err != nil {
				return notFound(err, ns)
			}
			fmt.Fprintf(g.errw, "sync of %s requested (operation %s)\n", name, id)
			if !wait {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := c.WaitSync(wctx, ns, name, id)
			if err != nil {
				if wctx.Err() != nil && ctx.Err() == nil {
					return fmt.Errorf("no result for the sync of %s within %s: %s The request stays queued", name, timeout, whoRuns(c, ns))
				}
				return err
			}
			fmt.Fprintf(g.out, "%s: %s\n", st.Phase, st.Message)
			if st.Phase == v1alpha1.OperationFailed {
				return fmt.Errorf("sync of %s failed", name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&revision, "revision", "", "sync this branch, tag or commit instead of the target revision")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete resources that left Git")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait for the result")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait")
	return cmd
}

// whoRuns says, for a request that got no answer, what should have
// answered it.
func whoRuns(c *appops.Client, ns string) string {
	if c.Hub() {
		return fmt.Sprintf("on the hub the agent of spoke %s answers: is it connected (`kubectl --context tether-hub get agents -n %s`, `tether status`)?", ns, cluster.SystemNamespace)
	}
	return "is the controller (agent) of this cluster running (`tether status`)?"
}

func appRefresh(g *globals, k *kubeFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "refresh NAME",
		Short: "Fetch Git and compare again now, instead of at the next poll",
		Long: "Fetch Git and compare again now, instead of at the next poll, and wait for the answer.\n" +
			"On the hub the principal carries the request to the spoke's agent; the hub's copy\n" +
			"shows the new compare (status.reconciledAt) when it returns.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.appOps(g)
			if err != nil {
				return err
			}
			ctx, name, ns := cmd.Context(), args[0], k.namespace
			id, err := c.Refresh(ctx, ns, name)
			if err != nil {
				return notFound(err, ns)
			}
			wctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			app, err := c.WaitRefresh(wctx, ns, name, id)
			if err != nil {
				if wctx.Err() != nil && ctx.Err() == nil {
					return fmt.Errorf("refresh of %s not answered within %s: %s The request stays until it is", name, timeout, whoRuns(c, ns))
				}
				return err
			}
			fmt.Fprintf(g.out, "%s: %s at %s, %s\n", app.Name, cmp.Or(app.Status.Sync.Status, "-"), cmp.Or(repo.ShortSHA(app.Status.Sync.Revision), "-"), cmp.Or(app.Status.Health.Status, "-"))
			// A compare that failed is an answer too: say why.
			for _, c := range app.Status.Conditions {
				fmt.Fprintf(g.out, "  %s: %s\n", c.Type, c.Message)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait")
	return cmd
}

func appDiff(g *globals, k *kubeFlags) *cobra.Command {
	var prune bool
	cmd := &cobra.Command{
		Use:   "diff NAME",
		Short: "Show what a sync would change (fetches Git, reads the cluster, changes nothing)",
		Long: "Show what a sync would change: fetches Git, reads the cluster, changes nothing. An\n" +
			"Application on the hub is compared with the spoke it runs on (the spoke's copy and objects).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.appOps(g)
			if err != nil {
				return err
			}
			name := args[0]
			d, err := c.Diff(cmd.Context(), k.namespace, name, prune)
			if err != nil {
				return notFound(err, k.namespace)
			}
			printDiff(g, name, d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "show resources that left Git as pruned (default: as the sync policy says)")
	return cmd
}

func printDiff(g *globals, name string, d *appops.Diff) {
	on := ""
	if d.Spoke != "" {
		on = " on " + d.Spoke
	}
	if len(d.Resources) == 0 {
		fmt.Fprintf(g.out, "%s is in sync with %s%s.\n", name, repo.ShortSHA(d.Revision), on)
		return
	}
	fmt.Fprintf(g.out, "A sync of %s to %s would change %d resources%s:\n\n", name, repo.ShortSHA(d.Revision), len(d.Resources), on)
	for _, r := range d.Resources {
		fmt.Fprintf(g.out, "%s %s\n", strings.ToUpper(r.Action[:1])+r.Action[1:], r.Resource)
		if r.Unified != "" {
			fmt.Fprintln(g.out, r.Unified)
		}
	}
}
