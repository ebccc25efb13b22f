package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/repo"
)

// newSample is the UI's "make a change" as a command: a commit to the
// sample repository that every spoke then syncs.
func newSample(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Change the sample repository the workbench's Applications follow",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "scale <replicas>",
		Short: "Commit a new replica count for the sample on every spoke, and print the commit",
		Long: `scale commits an edit of the sample repository (the Deployment's replicas, in
the plain manifests and in every spoke's overlay) to the workbench's Git
server. The push webhook tells the principal, which tells the agents: watch
the commit reach every spoke with
  kubectl --context tether-hub get applications -A -w`,
		Example: "  tether sample scale 3",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give the replica count, e.g. tether sample scale 3 (got %d arguments)", len(args))
			}
			if n, err := strconv.Atoi(args[0]); err != nil || n < 0 || n > 20 {
				return fmt.Errorf("replicas %q: give a whole number from 0 to 20", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			n, _ := strconv.Atoi(args[0])
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			sha, err := fleet.MakeChange(cmd.Context(), wb, n)
			if err != nil {
				return fmt.Errorf("scale the sample to %d: %w", n, err)
			}
			fmt.Fprintf(g.out, "committed %s: scale the sample to %d replicas\n", repo.ShortSHA(sha), n)
			return nil
		},
	})
	return cmd
}
