package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPrepare(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "prepare",
		Short: "Compile and cache the embedded provider's control-plane binaries now",
		Long: `Compile etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
from pinned Go modules into the cache, as the first embedded up would. Useful
ahead of a demo or in CI; a no-op when they are cached.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			dir, err := wb.Prepare(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Control-plane binaries are ready in %s\n", dir)
			return nil
		},
	}
}
