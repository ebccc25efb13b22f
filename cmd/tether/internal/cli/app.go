package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/engine"
	"github.com/tether-dev/tether/gitops/repo"
)

func newApp(g *globals) *cobra.Command {
	k := &kubeFlags{}
	cmd := &cobra.Command{
		Use:   "app",
		Short: "List, inspect, sync, diff and refresh Applications",
	}
	cmd.PersistentFlags().StringVar(&k.context, "context", "", "kubeconfig context of the cluster (default: current), e.g. tether-spoke-1")
	cmd.PersistentFlags().StringVarP(&k.namespace, "namespace", "n", cluster.SystemNamespace, "namespace holding the Applications")
	cmd.AddCommand(appList(g, k), appGet(g, k), appSync(g, k), appRefresh(g, k), appDiff(g, k))
	return cmd
}

type appClient struct {
	cfg *rest.Config
	res dynamic.ResourceInterface
	ns  string
}

func (k *kubeFlags) apps(g *globals) (*appClient, error) {
	cfg, err := k.restConfig(g)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &appClient{cfg: cfg, res: dyn.Resource(v1alpha1.ApplicationsResource).Namespace(k.namespace), ns: k.namespace}, nil
}

func (c *appClient) get(ctx context.Context, name string) (*v1alpha1.Application, error) {
	u, err := c.res.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("no Application %q in namespace %s: `tether app list` shows the ones there are", name, c.ns)
	}
	if err != nil {
		return nil, err
	}
	return v1alpha1.ApplicationFrom(u)
}

func appList(g *globals, k *kubeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List Applications with sync status, health and revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := k.apps(g)
			if err != nil {
				return err
			}
			list, err := c.res.List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("list Applications: %w", err)
			}
			if len(list.Items) == 0 {
				fmt.Fprintf(g.out, "No Applications in namespace %s.\n", c.ns)
				return nil
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSYNC\tHEALTH\tREVISION\tLAST SYNC\tREPO\tPATH")
			for i := range list.Items {
				app, err := v1alpha1.ApplicationFrom(&list.Items[i])
				if err != nil {
					return err
				}
				last := "-"
				if n := len(app.Status.History); n > 0 {
					last = time.Since(app.Status.History[n-1].DeployedAt.Time).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", app.Name, dash(app.Status.Sync.Status), dash(app.Status.Health.Status),
					dash(repo.ShortSHA(app.Status.Sync.Revision)), last, app.Spec.Source.RepoURL, dash(app.Spec.Source.Path))
			}
			return tw.Flush()
		},
	}
}

func appGet(g *globals, k *kubeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one Application: source, status, resources, conditions, last operation, history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.apps(g)
			if err != nil {
				return err
			}
			app, err := c.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printApp(g, app)
			return nil
		},
	}
}

func printApp(g *globals, app *v1alpha1.Application) {
	s := app.Status
	fmt.Fprintf(g.out, "Name:         %s/%s\n", app.Namespace, app.Name)
	fmt.Fprintf(g.out, "Source:       %s (revision %s, path %s)\n", app.Spec.Source.RepoURL, dash(app.Spec.Source.TargetRevision), dash(app.Spec.Source.Path))
	fmt.Fprintf(g.out, "Destination:  namespace %s\n", app.Spec.Destination.Namespace)
	policy := "manual"
	if p := app.Spec.SyncPolicy; p != nil && p.Automated != nil {
		policy = fmt.Sprintf("automated (prune=%t, selfHeal=%t)", p.Automated.Prune, p.Automated.SelfHeal)
	}
	fmt.Fprintf(g.out, "Sync policy:  %s\n", policy)
	fmt.Fprintf(g.out, "Sync:         %s at %s\n", dash(s.Sync.Status), dash(repo.ShortSHA(s.Sync.Revision)))
	health := dash(s.Health.Status)
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Kind, dash(r.Namespace), r.Name, sync, h, msg)
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
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.apps(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if _, err := c.get(ctx, args[0]); err != nil {
				return err
			}
			id := newOperationID()
			user := os.Getenv("USER")
			if user == "" {
				user = "tether-cli"
			}
			op := map[string]any{"operation": v1alpha1.Operation{ID: id, InitiatedBy: user, Sync: &v1alpha1.SyncOperation{Revision: revision, Prune: prune}}}
			patch, _ := json.Marshal(op)
			if _, err := c.res.Patch(ctx, args[0], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return fmt.Errorf("request sync of %s: %w", args[0], err)
			}
			fmt.Fprintf(g.errw, "sync of %s requested (operation %s)\n", args[0], id)
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			for {
				app, err := c.get(ctx, args[0])
				if err == nil && app.Status.OperationState != nil && app.Status.OperationState.Operation.ID == id && app.Status.OperationState.Phase != v1alpha1.OperationRunning {
					st := app.Status.OperationState
					fmt.Fprintf(g.out, "%s: %s\n", st.Phase, st.Message)
					if st.Phase == v1alpha1.OperationFailed {
						return fmt.Errorf("sync of %s failed", args[0])
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("no result for the sync of %s within %s: is the controller (agent) of this cluster running? The request stays queued", args[0], timeout)
				case <-time.After(250 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().StringVar(&revision, "revision", "", "sync this branch, tag or commit instead of the target revision")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete resources that left Git")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait for the result")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait")
	return cmd
}

func appRefresh(g *globals, k *kubeFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "refresh NAME",
		Short: "Fetch Git and compare again now, instead of at the next poll",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.apps(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationRefresh, time.Now().UTC().Format(time.RFC3339Nano))
			if _, err := c.res.Patch(ctx, args[0], types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("no Application %q in namespace %s", args[0], c.ns)
				}
				return fmt.Errorf("request refresh of %s: %w", args[0], err)
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			for {
				app, err := c.get(ctx, args[0])
				if err == nil {
					if _, pending := app.Annotations[v1alpha1.AnnotationRefresh]; !pending {
						fmt.Fprintf(g.out, "%s: %s at %s, %s\n", app.Name, dash(app.Status.Sync.Status), dash(repo.ShortSHA(app.Status.Sync.Revision)), dash(app.Status.Health.Status))
						return nil
					}
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("refresh of %s not picked up within %s: is the controller (agent) of this cluster running?", args[0], timeout)
				case <-time.After(200 * time.Millisecond):
				}
			}
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
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.apps(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			app, err := c.get(ctx, args[0])
			if err != nil {
				return err
			}
			cacheDir, err := g.cache()
			if err != nil {
				return err
			}
			e, err := engine.New(engine.Options{Config: c.cfg, Namespace: c.ns, CacheDir: filepath.Join(cacheDir, "diff"), Logger: g.logger()})
			if err != nil {
				return err
			}
			if p := app.Spec.SyncPolicy; p != nil && p.Automated != nil && p.Automated.Prune {
				prune = true
			}
			sha, diffs, err := e.Diff(ctx, app, prune)
			if err != nil {
				return err
			}
			if len(diffs) == 0 {
				fmt.Fprintf(g.out, "%s is in sync with %s.\n", app.Name, repo.ShortSHA(sha))
				return nil
			}
			fmt.Fprintf(g.out, "A sync of %s to %s would change %d resources:\n\n", app.Name, repo.ShortSHA(sha), len(diffs))
			for _, d := range diffs {
				fmt.Fprintf(g.out, "%s %s\n", strings.ToUpper(d.Action[:1])+d.Action[1:], d.Resource)
				if d.Unified != "" {
					fmt.Fprintln(g.out, d.Unified)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "show resources that left Git as pruned (default: as the sync policy says)")
	return cmd
}

func newOperationID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
