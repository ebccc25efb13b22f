package fleet

import (
	"context"
	"fmt"

	"github.com/tether-dev/tether/cluster"
)

// UpWorkbench is "up" as both the CLI and the terminal UI do it: the
// workbench's clusters brought to cfg (created, reattached or restarted),
// then, unless clustersOnly, the GitOps system on exactly those clusters
// (Up with Options.Clusters set; opts.Clusters is ignored). cfg is checked
// once, by cluster.Workbench.Up. The clusters are returned even when the
// GitOps system then fails, so that the caller can still say what of cfg
// they do not follow (cluster.Cluster.Warnings).
func UpWorkbench(ctx context.Context, opts Options, cfg cluster.Config, clustersOnly bool) ([]cluster.Cluster, *State, error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	clusters, err := opts.Workbench.Up(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range clusters {
		for _, w := range c.Warnings {
			opts.Logger.Info("the cluster does not follow the configuration", "cluster", c.Name, "warning", w)
		}
	}
	if clustersOnly {
		return clusters, nil, nil
	}
	opts.Clusters = clusters
	st, err := Up(ctx, opts)
	if err != nil {
		return clusters, st, fmt.Errorf("the clusters are up, but the GitOps system is not: %w", err)
	}
	return clusters, st, nil
}

// DownWorkbench is "down" as both the CLI and the terminal UI do it: the
// GitOps system's components stopped first (they talk to the clusters and
// would log errors while those go away), then the workbench's clusters,
// processes, data and kubeconfig contexts removed.
func DownWorkbench(ctx context.Context, wb *cluster.Workbench) error {
	if err := Down(ctx, wb); err != nil {
		return fmt.Errorf("stop the GitOps components: %w", err)
	}
	return wb.Down(ctx)
}
