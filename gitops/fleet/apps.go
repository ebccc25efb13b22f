package fleet

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/kubeapply"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/engine"
	"github.com/tether-dev/tether/gitops/repo"
	"github.com/tether-dev/tether/gitops/sample"
)

// manifestOptions are what differs between the providers' manifests.
type manifestOptions struct {
	image string
	// principalAddr is where agents reach the principal.
	principalAddr, gitURL string
	// nodePort exposes the principal (and the Git server on the next
	// port) on the node: kind only.
	nodePort int32
	gitArgs  []string
	// principalPod and gitPod annotate the pods with the loopback
	// addresses of the processes standing in for them: embedded only.
	principalPod, gitPod map[string]string
}

func applyManifests(ctx context.Context, opts Options, hub cluster.Cluster, spokes []cluster.Cluster, m manifestOptions) error {
	wb := opts.Workbench
	hubCfg, err := hub.RESTConfig()
	if err != nil {
		return err
	}
	ptls, err := readTLS(wb, "principal")
	if err != nil {
		return err
	}
	popts := deploy.Options{Image: m.image, PullPolicy: corev1.PullIfNotPresent, TLS: ptls, NodePort: m.nodePort, PodAnnotations: m.principalPod}
	objs, err := deploy.Principal(popts)
	if err != nil {
		return err
	}
	gopts := popts
	gopts.TLS = nil
	gopts.Args = m.gitArgs
	gopts.PodAnnotations = m.gitPod
	if m.nodePort != 0 {
		gopts.NodePort = m.nodePort + 1
	}
	gitObjs, err := deploy.GitServer(gopts)
	if err != nil {
		return err
	}
	if err := engine.InstallCRDs(ctx, hubCfg, v1alpha1.ApplicationCRD(), v1alpha1.AgentCRD()); err != nil {
		return err
	}
	if err := deploy.Apply(ctx, hubCfg, append(objs, gitObjs...), deploy.FieldManager); err != nil {
		return fmt.Errorf("hub %q: %w", hub.Name, err)
	}
	for _, s := range spokes {
		cfg, err := s.RESTConfig()
		if err != nil {
			return err
		}
		atls, err := readTLS(wb, s.Name)
		if err != nil {
			return err
		}
		objs, err := deploy.Agent(deploy.Options{Image: m.image, PullPolicy: corev1.PullIfNotPresent, TLS: atls, Spoke: s.Name, PrincipalAddress: m.principalAddr, GitURL: m.gitURL})
		if err != nil {
			return err
		}
		if err := deploy.Apply(ctx, cfg, objs, deploy.FieldManager); err != nil {
			return fmt.Errorf("spoke %q: %w", s.Name, err)
		}
	}
	return nil
}

// createSampleApps puts one Application per spoke into the hub namespace
// named after it: the hub is the source of truth (managed mode).
func createSampleApps(ctx context.Context, opts Options, st *State, hub cluster.Cluster, spokes []cluster.Cluster) error {
	cfg, err := hub.RESTConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	step := opts.Progress.Start(fmt.Sprintf("create the sample Application for %d spokes on the hub", len(spokes)))
	for _, s := range spokes {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: map[string]string{"app.kubernetes.io/managed-by": "tether"}}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			step.Done(err)
			return fmt.Errorf("create hub namespace %s: %w", s.Name, err)
		}
		app := &v1alpha1.Application{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
			ObjectMeta: metav1.ObjectMeta{Name: SampleApp, Namespace: s.Name},
			Spec: v1alpha1.ApplicationSpec{
				Source:      v1alpha1.Source{RepoURL: st.GitURL, TargetRevision: sample.Branch, Path: sample.OverlayDir(s.Name)},
				Destination: v1alpha1.Destination{Namespace: SampleNamespace},
				SyncPolicy: &v1alpha1.SyncPolicy{Automated: &v1alpha1.Automated{Prune: true, SelfHeal: true},
					SyncOptions: []string{v1alpha1.SyncOptionCreateNamespace}},
			},
		}
		u, err := kubeapply.FromTyped(app)
		if err != nil {
			step.Done(err)
			return err
		}
		if err := kubeapply.Apply(ctx, dyn.Resource(v1alpha1.ApplicationsResource).Namespace(s.Name), u, kubeapply.Options{FieldManager: deploy.FieldManager, Force: true}); err != nil {
			step.Done(err)
			return fmt.Errorf("create the sample Application for %s: %w", s.Name, err)
		}
	}
	step.Done(nil)
	return nil
}

// waitSynced waits until the hub shows every spoke's sample Synced and
// Healthy, reporting how many are there.
func waitSynced(ctx context.Context, opts Options, hub cluster.Cluster, spokes []cluster.Cluster) error {
	if len(spokes) == 0 {
		return nil
	}
	cfg, err := hub.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	step := opts.Progress.Start("wait until every spoke reports Synced and Healthy on the hub")
	deadline := time.Now().Add(opts.Wait)
	var last string
	for {
		ready := 0
		for _, s := range spokes {
			u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(s.Name).Get(ctx, SampleApp, metav1.GetOptions{})
			if err != nil {
				last = fmt.Sprintf("%s: %v", s.Name, err)
				continue
			}
			sync, _, _ := unstructured.NestedString(u.Object, "status", "sync", "status")
			health, _, _ := unstructured.NestedString(u.Object, "status", "health", "status")
			if sync == v1alpha1.SyncStatusSynced && health == "Healthy" {
				ready++
			} else {
				last = fmt.Sprintf("%s: %s/%s", s.Name, cmp.Or(sync, "-"), cmp.Or(health, "-"))
			}
		}
		step.Update(fmt.Sprintf("%d/%d spokes Synced and Healthy", ready, len(spokes)))
		if ready == len(spokes) {
			step.Done(nil)
			return nil
		}
		if time.Now().After(deadline) {
			err := &AppNotReadyError{App: SampleApp, Namespace: spokes[0].Name, Context: hub.Context,
				Err: fmt.Errorf("not every spoke was Synced and Healthy within %s (last: %s); see the logs in %s", opts.Wait, last, filepath.Join(dir(opts.Workbench), "logs"))}
			step.Done(err)
			return err
		}
		select {
		case <-ctx.Done():
			step.Done(ctx.Err())
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ensureSample seeds the sample repository at url when it has no sample
// yet and otherwise keeps its commits (sample.Ensure): a second up must not
// undo `tether sample scale` or a scenario's commit.
func ensureSample(ctx context.Context, step progress.Step, url string, spokes []string, w sample.Workload) error {
	head, seeded, err := sample.Ensure(ctx, url, spokes, w, sample.DefaultAuthor)
	if err != nil {
		return err
	}
	if seeded {
		step.Update("seeded at " + repo.ShortSHA(head))
	} else {
		step.Update("kept, at " + repo.ShortSHA(head))
	}
	return nil
}
