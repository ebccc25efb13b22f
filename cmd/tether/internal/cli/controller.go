package cli

import (
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/engine"
)

func newController(g *globals) *cobra.Command {
	k := &kubeFlags{}
	var poll time.Duration
	var workers int
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the Application sync engine against a cluster (what an agent runs on its spoke)",
		Long: `Install the Application CRD if needed and reconcile the Applications of one
namespace: fetch Git, render, compare with the cluster, apply with server-side
apply, prune and self-heal as each Application's sync policy says.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := k.restConfig(g)
			if err != nil {
				return err
			}
			if err := engine.InstallCRD(cmd.Context(), cfg); err != nil {
				return err
			}
			cacheDir, err := g.cache()
			if err != nil {
				return err
			}
			e, err := engine.New(engine.Options{
				Config: cfg, Namespace: k.namespace, Logger: g.logger(),
				CacheDir:     filepath.Join(cacheDir, "engine", k.namespace),
				PollInterval: poll, Workers: workers,
			})
			if err != nil {
				return err
			}
			return e.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&k.context, "context", "", "kubeconfig context of the cluster (default: current)")
	cmd.Flags().StringVarP(&k.namespace, "namespace", "n", cluster.SystemNamespace, "namespace holding the Applications")
	cmd.Flags().DurationVar(&poll, "poll", 3*time.Minute, "how often to fetch Git without a refresh trigger")
	cmd.Flags().IntVar(&workers, "workers", 4, "Applications reconciled in parallel")
	return cmd
}
