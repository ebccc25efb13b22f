package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/gitops/fleet"
)

func newDown(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the workbench: clusters, processes, data and kubeconfig contexts",
		Long: `Remove every cluster the workbench made, stop its processes, delete its data
folders and its tether-* kubeconfig contexts. Clusters of the existing provider
stay; only what tether created inside them is removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			if err := fleet.DownWorkbench(cmd.Context(), wb); err != nil {
				return err
			}
			fmt.Fprintln(g.out, "The workbench is down.")
			return nil
		},
	}
}
