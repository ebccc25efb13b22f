package intercept

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/intercept/agentpod"
	"github.com/tether-dev/tether/intercept/record"
)

func tetherDeployment(name, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: deploy.DefaultNamespace},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "agent", Image: image}},
		}}},
	}
}

// The provider decides where the traffic-agent runs: a local process on
// embedded clusters, a pod of tether's image elsewhere, whose image is
// read from the cluster's tether Deployment unless --agent-image names one.
func TestAgentOptionsByProvider(t *testing.T) {
	ctx := context.Background()
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"}
	logPath := filepath.Join(t.TempDir(), "intercept", "agent.log")
	const loaded = "tether.local/tether:0123abcd"
	tests := []struct {
		name     string
		provider string
		objs     []runtime.Object
		flag     string
		image    string // want a pod of this image; "" with no err: a local process
		err      []string
		cause    error // what errors.Is finds in err, if set
	}{
		{name: "kind spoke: the agent deployment's image", provider: cluster.ProviderKind,
			objs: []runtime.Object{tetherDeployment(deploy.AgentName, loaded)}, image: loaded},
		{name: "kind hub: the principal deployment's image", provider: cluster.ProviderKind,
			objs: []runtime.Object{tetherDeployment(deploy.PrincipalName, loaded)}, image: loaded},
		{name: "kind, only the Git server", provider: cluster.ProviderKind,
			objs: []runtime.Object{tetherDeployment(deploy.GitName, loaded)}, image: loaded},
		{name: "--agent-image wins", provider: cluster.ProviderKind,
			objs: []runtime.Object{tetherDeployment(deploy.AgentName, loaded)}, flag: "registry.example/tether:v1", image: "registry.example/tether:v1"},
		{name: "existing with --agent-image", provider: cluster.ProviderExisting, flag: "registry.example/tether:v1", image: "registry.example/tether:v1"},
		{name: "kind without tether's deployments", provider: cluster.ProviderKind,
			objs: []runtime.Object{tetherDeployment("someone-else", "nginx")},
			err:  []string{"intercepts on kind clusters run tether's image, which bringing the GitOps system up loads", "tether-system/tether-principal"}, cause: ErrNoAgentImage},
		{name: "existing without an image", provider: cluster.ProviderExisting,
			err: []string{"intercepts on existing clusters run tether's image"}, cause: ErrNoAgentImage},
		{name: "embedded", provider: cluster.ProviderEmbedded},
		{name: "embedded refuses --agent-image", provider: cluster.ProviderEmbedded, flag: "x", err: []string{"traffic-agent image", "embedded", "local process"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(tc.objs...)
			traits, err := cluster.ProviderTraits(tc.provider)
			if err != nil {
				t.Fatal(err)
			}
			cl := cluster.Cluster{Name: "spoke-1", Provider: tc.provider, Traits: traits, AdminKubeconfig: "/dev/null"}
			req := Request{AgentImage: tc.flag, Verbosity: 1, Exe: "/bin/tether"}
			opts, l, err := agentOptions(ctx, cl, cs, cfg, req, t.TempDir(), logPath)
			if len(tc.err) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				// The command adds `tether up` and --agent-image for
				// this cause.
				if tc.cause != nil && !errors.Is(err, tc.cause) {
					t.Errorf("error %v is not %v", err, tc.cause)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.Launch == nil || opts.Client != cs {
				t.Fatal("options lack the launcher or the client")
			}
			if tc.provider == cluster.ProviderEmbedded {
				if !opts.Embedded || opts.DialAgent != nil || l != nil {
					t.Errorf("embedded: Embedded=%v DialAgent set=%v pod launcher=%v, want a local process over loopback", opts.Embedded, opts.DialAgent != nil, l)
				}
				return
			}
			if opts.Embedded || opts.DialAgent == nil || l == nil {
				t.Fatalf("%s: Embedded=%v DialAgent set=%v, want a pod reached by port-forward", tc.provider, opts.Embedded, opts.DialAgent != nil)
			}
			if l.Options.Image != tc.image {
				t.Errorf("launcher image = %q, want %q", l.Options.Image, tc.image)
			}
			if !slices.Equal(l.Options.Args, []string{"-v"}) {
				t.Errorf("agent args = %v, want the workbench's -v", l.Options.Args)
			}
			if opts.AgentTimeout < 60*time.Second {
				t.Errorf("agent timeout %v leaves a pod too little time to start", opts.AgentTimeout)
			}
			launchedImage(t, cs, opts.Launch, tc.image)
		})
	}
}

// launchedImage runs launch as intercept.Start would (after creating the
// agent's Lease) and checks the pod it creates runs image.
func launchedImage(t *testing.T, cs *fake.Clientset, launch func(context.Context, *record.Record, string) (func(), error), image string) {
	t.Helper()
	ctx := context.Background()
	rec := &record.Record{
		Name: "web-80", Namespace: "shop", Service: "web", Port: 80,
		Ports:            []record.Port{{Port: 80, TargetPort: 8080}},
		OriginalSelector: map[string]string{"app": "web"}, AgentLabels: record.AgentLabels("web"),
		Lease: record.LeaseName("web-80"), Agent: record.AgentName("web"), AgentPod: record.AgentName("web"), AgentID: "a1",
	}
	if _, err := cs.CoordinationV1().Leases("shop").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: rec.Agent, Namespace: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := launch(ctx, rec, "tok"); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("shop").Get(ctx, rec.AgentPod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Spec.Containers[0].Image; got != image {
		t.Errorf("the traffic-agent pod runs %q, want %q", got, image)
	}
}

// A start names the cluster it cannot find, and the ones there are,
// before anything is touched.
func TestStartOnWorkbenchUnknownCluster(t *testing.T) {
	wb, err := cluster.New(cluster.Options{StateDir: filepath.Join(t.TempDir(), "state"), CacheDir: t.TempDir(), Kubeconfig: filepath.Join(t.TempDir(), "config")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = StartOnWorkbench(ctx, wb, Request{Target: "nowhere/default/web", Port: 80, To: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), `no cluster "nowhere": the workbench has no clusters`) {
		t.Errorf("StartOnWorkbench on an empty workbench = %v", err)
	}
	if _, err := StartOnWorkbench(ctx, wb, Request{Target: "nowhere/default/web", To: "127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "is required: the Service port to intercept") {
		t.Errorf("StartOnWorkbench without a port = %v", err)
	}
	if _, err := StartOnWorkbench(ctx, wb, Request{Target: "nowhere", Port: 80}); err == nil {
		t.Error("a target that is not <cluster>/<namespace>/<service> must be refused")
	}
}

// agentpod repeats TokenEnv to spare an import of this package (which
// imports it); the pod's agent reads this one. The test lives here, the
// importing side, to keep the test import acyclic.
func TestTokenEnvIsTheAgents(t *testing.T) {
	if agentpod.TokenEnv != TokenEnv {
		t.Fatalf("agentpod.TokenEnv %q, but the agent reads %q", agentpod.TokenEnv, TokenEnv)
	}
}
