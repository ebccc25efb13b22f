package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

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
	cmd.AddCommand(newSampleServe(g), newSampleURL(g))
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
// "sample serve --listen :8080"), and on the embedded provider, with
// --stand-in, what `up` runs for each spoke in their place.
func newSampleServe(g *globals) *cobra.Command {
	var listen, clusterName, standIn string
	k := &kubeFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the sample application: GET / says which cluster answered, /healthz is for probes",
		Long: `serve is the web server the sample's Deployment runs from tether's own image.
GET / answers with the cluster, pod and node that served the request, read
from $` + sample.ClusterEnv + ` (each spoke's overlay sets it), $POD_NAME and
$NODE_NAME (the downward API); GET /healthz answers "ok".

With --stand-in NAMESPACE (the embedded provider, whose kwok pods run
nothing) it also answers for the sample's pods in that namespace of the
cluster --kubeconfig/--context name: it writes its address on each of them,
and the spoke's service proxy then routes the sample's Service to it. ` + "`up`" + `
runs one per spoke this way.`,
		Example: `  tether sample serve --listen 127.0.0.1:18766 --cluster laptop
  tether sample serve --listen :8080
  kubectl --context tether-spoke-1 -n sample port-forward svc/web 8080:80 & curl localhost:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := sample.InfoFromEnv(os.Getenv)
			if clusterName != "" {
				info.Cluster = clusterName
			}
			var cs kubernetes.Interface
			if standIn != "" {
				cfg, err := k.restConfig(g)
				if err != nil {
					return err
				}
				if cs, err = kubernetes.NewForConfig(cfg); err != nil {
					return err
				}
			}
			// A stand-in that fails (the cluster gone, no rights on its
			// pods) ends the server with its error: serving while nothing
			// routes to it would hide why the sample does not answer.
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			err := sample.Serve(ctx, listen, info, g.logger(), func(bound string) {
				fmt.Fprintf(g.out, "Serving the sample at http://%s/ (Ctrl-C stops)\n", bound)
				if cs == nil {
					return
				}
				go func() {
					if err := sample.StandIn(ctx, cs, standIn, bound, g.logger()); err != nil {
						cancel(fmt.Errorf("stand in for the sample's pods in namespace %s: %w", standIn, err))
					}
				}()
			})
			if cause := context.Cause(ctx); cmd.Context().Err() == nil && cause != nil {
				return errors.Join(cause, err)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	cmd.Flags().StringVar(&clusterName, "cluster", "", "cluster name to report (default $"+sample.ClusterEnv+")")
	cmd.Flags().StringVar(&standIn, "stand-in", "", "embedded provider: also answer for the sample's kwok pods in this namespace of the --context cluster")
	cmd.Flags().StringVar(&k.context, "context", "", "with --stand-in: kubeconfig context of the cluster (default: current)")
	return cmd
}

// newSampleURL prints where this machine reaches a spoke's sample.
func newSampleURL(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "url <spoke>",
		Short: "Print the URL at which this machine reaches the sample's Service on a spoke",
		Long: `url prints the address of the sample's Service (web, port 80) on the spoke
as this machine reaches it: on the embedded provider the spoke's service proxy
serves it on loopback. An intercept of the Service changes who answers there,
not the address. On kind it says how to open a port-forward instead.`,
		Example: `  curl "$(tether sample url spoke-1)"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			addr, err := fleet.ServiceAddr(wb, args[0], fleet.SampleNamespace, sample.AppName, sample.ServicePort)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "http://%s/\n", addr)
			return nil
		},
	}
}
