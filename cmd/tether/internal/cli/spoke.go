package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/fleet"
)

func newSpoke(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "spoke",
		Short: "Add a spoke to the running workbench, or remove one",
		Long: `spoke changes the spokes of a workbench that is up, without touching the
others: add creates the cluster and brings the GitOps system up again with it
(its agent, its sample Application on the hub, synced); remove stops its
agent, deletes its Applications on the hub, the cluster and its kubeconfig
context.

A later bare ` + "`tether up`" + ` keeps the spokes the workbench runs; a
tether.yaml in the working folder, --spokes or --spoke set them instead.`,
	}
	cmd.AddCommand(newSpokeAdd(g), newSpokeRemove(g))
	return cmd
}

// spokeArg is cobra.ExactArgs(1) with a message that says what to type.
func spokeArg(verb string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 || args[0] == "" {
			return fmt.Errorf("give one spoke name: tether spoke %s <name>, e.g. tether spoke %s spoke-3 (got %d arguments)", verb, verb, len(args))
		}
		return nil
	}
}

func newSpokeAdd(g *globals) *cobra.Command {
	var kctx string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:     "add <name>",
		Short:   "Create a spoke cluster and bring the GitOps system up with it",
		Example: "  tether spoke add spoke-3\n  tether spoke add eu --context kind-eu   # existing provider",
		Args:    spokeArg("add"),
		RunE: func(cmd *cobra.Command, args []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			fo := fleet.Options{Workbench: wb, Progress: g.progress(), Logger: g.logger(), Wait: wait}
			if err := addSpoke(cmd.Context(), wb, cluster.ClusterConfig{Name: args[0], Context: kctx}, fo); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Spoke %s is up (context %s).\n", args[0], cluster.ContextName(args[0]))
			return nil
		},
	}
	cmd.Flags().StringVar(&kctx, "context", "", "existing provider: the kubeconfig context of the cluster to use as the spoke")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for every spoke to be Synced and Healthy")
	return cmd
}

func newSpokeRemove(g *globals) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:     "remove <name>",
		Aliases: []string{"rm"},
		Short:   "Stop a spoke's agent, delete its Applications on the hub, the cluster and its context",
		Example: "  tether spoke remove spoke-3",
		Args:    spokeArg("remove"),
		RunE: func(cmd *cobra.Command, args []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			fo := fleet.Options{Workbench: wb, Progress: g.progress(), Logger: g.logger(), Wait: wait}
			if err := removeSpoke(cmd.Context(), wb, args[0], fo); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Spoke %s is removed.\n", args[0])
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the remaining spokes to be Synced and Healthy")
	return cmd
}

// addSpoke is `tether spoke add` and the UI's add: the cluster first, then
// the GitOps system again, which sees the new spoke and starts its agent,
// creates its sample Application on the hub and waits until it is Synced.
// A workbench brought up with --clusters-only stays without the system.
func addSpoke(ctx context.Context, wb *cluster.Workbench, spoke cluster.ClusterConfig, fo fleet.Options) error {
	fst, err := fleet.Load(wb)
	if err != nil {
		return err
	}
	if _, err := wb.AddSpoke(ctx, spoke); err != nil {
		return err
	}
	if fst == nil {
		return nil
	}
	if _, err := fleet.Up(ctx, fo); err != nil {
		return fmt.Errorf("spoke %s is created, but the GitOps system is not up with it: %w", spoke.Name, err)
	}
	return nil
}

// removeSpoke is `tether spoke remove` and the UI's remove. The agent goes
// first so it does not log errors about a cluster going away, then the
// spoke's namespace on the hub (its Applications), then the cluster; last
// the GitOps system is brought up again for the spokes that remain, so the
// principal and the record forget the removed one.
func removeSpoke(ctx context.Context, wb *cluster.Workbench, name string, fo fleet.Options) error {
	cfg, err := wb.RecordedConfig()
	if err != nil {
		return err
	}
	if len(cfg.Clusters()) == 0 || cfg.Hub.Name == "" {
		return fmt.Errorf("cannot remove spoke %q: the workbench in %s has no clusters; run `tether up` first", name, wb.StateDir())
	}
	if _, err := cfg.WithoutSpoke(name); err != nil {
		return err
	}
	fst, err := fleet.Load(wb)
	if err != nil {
		return err
	}
	r := spokeRemoval{
		name:          name,
		progress:      fo.Progress,
		removeCluster: func(ctx context.Context) error { _, err := wb.RemoveSpoke(ctx, name); return err },
	}
	if fst != nil {
		for _, p := range fst.Processes {
			if p.Name == "agent-"+name {
				r.stopAgents = append(r.stopAgents, func(ctx context.Context) error { return process.Stop(ctx, p, 10*time.Second) })
			}
		}
		r.deleteApps = func(ctx context.Context) error { return deleteHubNamespace(ctx, wb, cfg.Hub.Name, name) }
		r.fleetUp = func(ctx context.Context) error { _, err := fleet.Up(ctx, fo); return err }
	}
	return r.run(ctx)
}

// spokeRemoval is the sequence of removeSpoke, its steps as functions so
// the handling of a failure can be tested without clusters. Without the
// GitOps system, deleteApps and fleetUp are nil and stopAgents empty.
type spokeRemoval struct {
	name          string
	progress      progress.Reporter
	stopAgents    []func(context.Context) error
	deleteApps    func(context.Context) error
	removeCluster func(context.Context) error
	fleetUp       func(context.Context) error
}

func (r spokeRemoval) run(ctx context.Context) error {
	rep := r.progress
	if rep == nil {
		rep = progress.Discard()
	}
	for _, stop := range r.stopAgents {
		step := rep.Start("stop the agent of " + r.name)
		err := stop(ctx)
		step.Done(err)
		if err != nil {
			return r.restore(ctx, fmt.Errorf("stop the agent of %s: %w", r.name, err))
		}
	}
	if r.deleteApps != nil {
		step := rep.Start(fmt.Sprintf("delete the Applications of %s on the hub (namespace %s)", r.name, r.name))
		err := r.deleteApps(ctx)
		step.Done(err)
		if err != nil {
			return r.restore(ctx, err)
		}
	}
	if err := r.removeCluster(ctx); err != nil {
		return r.restore(ctx, err)
	}
	if r.fleetUp == nil {
		return nil
	}
	if err := r.fleetUp(ctx); err != nil {
		return fmt.Errorf("spoke %s is removed, but the GitOps system did not come back up for the others: %w; run `tether up` to bring it back", r.name, err)
	}
	return nil
}

// restore brings the GitOps system back after a removal failed part way:
// once the agent is stopped (or the Applications deleted) the spoke would
// otherwise stay without them. fleet.Up works from the clusters the
// workbench still has, so it serves whether or not the cluster went.
func (r spokeRemoval) restore(ctx context.Context, cause error) error {
	if r.fleetUp == nil {
		return fmt.Errorf("cannot remove spoke %s: %w", r.name, cause)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("cannot remove spoke %s: %w; interrupted before the GitOps system was brought back: run `tether up`, then `tether spoke remove %s` again", r.name, cause, r.name)
	}
	if err := r.fleetUp(ctx); err != nil {
		return fmt.Errorf("cannot remove spoke %s: %w; bringing the GitOps system back failed too (%v): run `tether up`, then `tether spoke remove %s` again", r.name, cause, err, r.name)
	}
	return fmt.Errorf("cannot remove spoke %s: %w; the GitOps system is back up for the spokes the workbench still has: fix the cause and run `tether spoke remove %s` again", r.name, cause, r.name)
}

// deleteHubNamespace removes the namespace the hub keeps a spoke's
// Applications in, if tether made it, and waits until it is gone: adding
// the spoke again right away would otherwise meet a terminating namespace.
func deleteHubNamespace(ctx context.Context, wb *cluster.Workbench, hub, ns string) error {
	cfg, err := wb.RESTConfig(hub)
	if err != nil {
		return err
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read hub namespace %s: %w", ns, err)
	}
	if got.Labels["app.kubernetes.io/managed-by"] != "tether" {
		return nil // the user's namespace of that name: not ours to delete
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete hub namespace %s: %w", ns, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hub namespace %s is still terminating after a minute: %w", ns, errors.Join(ctx.Err(), err))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
