package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
)

func newPrepare(g *globals) *cobra.Command {
	var provider, nodeImage string
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Get a provider's binaries or node image ready ahead of the first up",
		Long: `Compile etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
from pinned Go modules into the cache, as the first embedded up would. Useful
ahead of a demo or in CI; a no-op when they are cached.

With --provider kind, get the kind node image the first kind up would use
instead: --node-image when given (pulled if Docker lacks it), else tether's
offline-built image or kind's default when Docker has one, else kind's default
pulled, else tether's image built offline (minutes, once). It prints the image.`,
		Example: `  tether prepare
  tether prepare --provider kind
  tether prepare --provider kind --node-image kindest/node:v1.37.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if provider == "" && nodeImage != "" {
				provider = cluster.ProviderKind // only kind has node images
			}
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			switch provider {
			case "", cluster.ProviderEmbedded:
				if nodeImage != "" {
					return fmt.Errorf("--node-image is for --provider kind, not %s", provider)
				}
				dir, err := wb.Prepare(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "Control-plane binaries are ready in %s\n", dir)
				return nil
			case cluster.ProviderKind:
				ref, err := wb.PrepareKind(cmd.Context(), nodeImage)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "The kind node image is ready: %s\n", ref)
				return nil
			}
			return fmt.Errorf("--provider %q: prepare knows embedded (compile the control plane) and kind (get the node image)", provider)
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "what to prepare: embedded (default: compile the control plane) or kind (get the node image)")
	cmd.Flags().StringVar(&nodeImage, "node-image", "", "kind: the node image to make sure Docker has (implies --provider kind)")
	return cmd
}
