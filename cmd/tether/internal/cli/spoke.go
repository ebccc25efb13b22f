package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
)

func newSpoke(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "spoke",
		Short: "Add a spoke to the running workbench, or remove one",
		Long: `spoke changes the spokes of a workbench that is up, without touching the
others: add creates the cluster and brings the GitOps system up again with it
(its agent, its sample Application on the hub, synced); remove stops its
agent, deletes its Applications and its Agent object on the hub, the
cluster, its kubeconfig context and its TLS material. Remove also takes a
spoke the workbench has no cluster for but the hub still holds objects of
(left by an older tether): it removes those.

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
			if err := fleet.AddSpoke(cmd.Context(), fo, cluster.ClusterConfig{Name: args[0], Context: kctx}); err != nil {
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
		Short:   "Stop a spoke's agent, delete its Applications and Agent on the hub, the cluster and its context",
		Example: "  tether spoke remove spoke-3",
		Args:    spokeArg("remove"),
		RunE: func(cmd *cobra.Command, args []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			fo := fleet.Options{Workbench: wb, Progress: g.progress(), Logger: g.logger(), Wait: wait}
			r, err := fleet.RemoveSpoke(cmd.Context(), fo, args[0])
			if err != nil {
				return err
			}
			if !r.Cluster {
				fmt.Fprintf(g.out, "Spoke %s had no cluster any more; what the hub still held of it is removed.\n", args[0])
				return nil
			}
			fmt.Fprintf(g.out, "Spoke %s is removed.\n", args[0])
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the remaining spokes to be Synced and Healthy")
	return cmd
}
