package cli

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/repo"
	"github.com/tether-dev/tether/gitops/sample"
)

// newSample is the UI's "make a change" as a command: a commit to the
// sample repository that every spoke then syncs; and the sample's own
// server, which its pods run.
func newSample(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "The sample application: change its repository, or serve it",
	}
	cmd.AddCommand(newSampleServe(g))
	var wait time.Duration
	scale := &cobra.Command{
		Use:   "scale <replicas>",
		Short: "Commit a new replica count for the sample on every spoke and watch it reach them",
		Long: `scale commits an edit of the sample repository (the Deployment's replicas, in
the plain manifests and in every spoke's overlay) to the workbench's Git
server. The push webhook tells the principal, which tells the agents; scale
then watches the hub until every spoke's sample is Synced and Healthy at the
commit, saying when each got there (--wait 0 returns after the commit).`,
		Example: "  tether sample scale 3\n  tether sample scale 1 --wait 0",
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
			if wait <= 0 {
				return nil
			}
			if err := fleet.WatchRollout(cmd.Context(), wb, sha, g.progress(), wait); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "every spoke runs %s: the sample at %d replicas, Synced and Healthy\n", repo.ShortSHA(sha), n)
			return nil
		},
	}
	scale.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to watch the commit reach every spoke (0: do not watch)")
	cmd.AddCommand(scale)
	return cmd
}

// newSampleServe is what the sample's pods run (tether's image, args
// "sample serve --listen :8080").
func newSampleServe(g *globals) *cobra.Command {
	var listen, clusterName string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the sample application: GET / says which cluster answered, /healthz is for probes",
		Long: `serve is the web server the sample's Deployment runs from tether's own image.
GET / answers with the cluster, pod and node that served the request, read
from $` + sample.ClusterEnv + ` (each spoke's overlay sets it), $POD_NAME and
$NODE_NAME (the downward API); GET /healthz answers "ok".`,
		Example: `  tether sample serve --listen :8080
  kubectl --context tether-spoke-1 -n sample port-forward svc/web 8080:80 & curl localhost:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := sample.InfoFromEnv(os.Getenv)
			if clusterName != "" {
				info.Cluster = clusterName
			}
			return sample.Serve(cmd.Context(), listen, info, g.logger(), func(bound string) {
				fmt.Fprintf(g.out, "Serving the sample at http://%s/ (Ctrl-C stops)\n", bound)
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	cmd.Flags().StringVar(&clusterName, "cluster", "", "cluster name to report (default $"+sample.ClusterEnv+")")
	return cmd
}
