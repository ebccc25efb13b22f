package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/image"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/sample"
)

// NodePorts on the hub node: spokes reach the principal and the Git server
// through the hub node's address on the kind network.
const (
	principalNodePort int32 = 30443
	gitNodePort       int32 = 30444
)

// upPods builds tether's image (no daemon, no Dockerfile) for the Docker
// engine's platform, loads it into every node, deploys the components as
// pods, and seeds the sample repository through a port-forward to the Git
// server pod when it has no sample yet.
func upPods(ctx context.Context, opts Options, hub cluster.Cluster, spokes []cluster.Cluster) (*State, error) {
	wb := opts.Workbench
	hubHost := hostOf(hub.InternalEndpoint)
	if hubHost == "" {
		return nil, &DamagedError{fmt.Errorf("the hub %q has no address on the kind network recorded", hub.Name)}
	}
	b := imageBuilder{
		docker:     runDocker,
		executable: opts.Bin,
		moduleRoot: func() string { return moduleRoot(opts.ModuleRoot) },
		runnable:   image.Runnable,
		build:      image.BuildBinary,
		logger:     opts.Logger,
	}
	step := opts.Progress.Start("build tether's image for the kind nodes (no Docker daemon)")
	work := filepath.Join(dir(wb), "image")
	if err := os.MkdirAll(work, 0o700); err != nil {
		step.Done(err)
		return nil, err
	}
	archive := filepath.Join(work, "tether.tar")
	ref, err := b.buildArchive(ctx, step, work, archive)
	step.Done(err)
	if err != nil {
		return nil, err
	}
	step = opts.Progress.Start("load " + ref + " into every node")
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range append([]cluster.Cluster{hub}, spokes...) {
		g.Go(func() error { return wb.LoadImage(gctx, c, archive) })
	}
	err = g.Wait()
	step.Done(err)
	if err != nil {
		return nil, err
	}
	st := &State{
		Provider:  hub.Provider,
		GitURL:    fmt.Sprintf("http://%s:%d/%s.git", hubHost, gitNodePort, SampleRepo),
		Principal: fmt.Sprintf("%s:%d", hubHost, principalNodePort),
	}
	for _, s := range spokes {
		st.Spokes = append(st.Spokes, s.Name)
	}
	gitArgs := []string{"git", "serve", "--root", deploy.GitDataPath, "--addr", fmt.Sprintf(":%d", deploy.GitPort),
		"--health-addr", fmt.Sprintf(":%d", deploy.DefaultHealthPort), "--repo", SampleRepo,
		"--webhook", fmt.Sprintf("http://%s.%s.svc:%d/webhook/git", deploy.PrincipalName, deploy.DefaultNamespace, deploy.DefaultHealthPort)}
	step = opts.Progress.Start("deploy the principal, the Git server and the agents")
	err = applyManifests(ctx, opts, hub, spokes, manifestOptions{image: ref, principalAddr: st.Principal, gitURL: st.GitURL, nodePort: principalNodePort, gitArgs: gitArgs})
	if err == nil {
		err = waitRollout(ctx, hub, deploy.GitName, deploy.PrincipalName)
	}
	step.Done(err)
	if err != nil {
		return nil, err
	}
	// The sample runs the image just loaded into every node: nothing to
	// pull, which an air-gapped kind could not do anyway.
	step = opts.Progress.Start("seed the sample repository")
	err = withGitForward(ctx, hub, func(base string) error {
		return ensureSample(ctx, step, base+"/"+SampleRepo+".git", st.Spokes, sample.TetherWorkload(ref))
	})
	step.Done(err)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// rolledOut says whether d's current spec runs and nothing older does. An
// available replica alone is not enough: while a new image rolls out, the
// old pod (Recreate: being deleted) still counts as available for a moment,
// and the Git server's old pod holds the old repository.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas >= want && s.Replicas == s.UpdatedReplicas && s.AvailableReplicas >= want && want >= 1
}

func waitRollout(ctx context.Context, c cluster.Cluster, names ...string) error {
	clusterName := c.Name
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for _, n := range names {
		for {
			d, err := cs.AppsV1().Deployments(deploy.DefaultNamespace).Get(ctx, n, metav1.GetOptions{})
			if err == nil && rolledOut(d) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("deployment %s on %s not available after 3m (kubectl --context tether-%s -n %s describe deploy %s)", n, clusterName, clusterName, deploy.DefaultNamespace, n)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}
