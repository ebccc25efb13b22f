package existing

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

// Name is the provider's flag value.
const Name = "existing"

// Provider adopts clusters from kubeconfig contexts.
type Provider struct {
	env providers.Env
	// Rules says where the user's kubeconfig is; nil means the standard
	// KUBECONFIG / ~/.kube/config rules, as kubectl uses.
	Rules *clientcmd.ClientConfigLoadingRules
}

// New returns the existing provider.
func New(env providers.Env, rules *clientcmd.ClientConfigLoadingRules) *Provider {
	if rules == nil {
		rules = clientcmd.NewDefaultClientConfigLoadingRules()
	}
	return &Provider{env: env, Rules: rules}
}

var _ providers.Provider = (*Provider)(nil)

// Name implements providers.Provider.
func (p *Provider) Name() string { return Name }

// Preflight implements providers.Provider: a kubeconfig with contexts must
// exist.
func (p *Provider) Preflight(context.Context) error {
	cfg, err := p.Rules.Load()
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	if len(cfg.Contexts) == 0 {
		return fmt.Errorf("the kubeconfig (%s) has no contexts: point KUBECONFIG at one that names your clusters", p.Rules.GetDefaultFilename())
	}
	return nil
}

// Ensure implements providers.Provider: it checks the context answers and
// keeps a self-contained copy of its credentials for tether's own use.
func (p *Provider) Ensure(ctx context.Context, spec providers.Spec, _ *state.Cluster) (*state.Cluster, error) {
	if spec.Context == "" {
		return nil, fmt.Errorf("cluster %q: no kubeconfig context given (context: in tether.yaml)", spec.Name)
	}
	raw, err := p.Rules.Load()
	if err != nil {
		return nil, fmt.Errorf("cluster %q: read kubeconfig: %w", spec.Name, err)
	}
	if _, ok := raw.Contexts[spec.Context]; !ok {
		return nil, fmt.Errorf("cluster %q: context %q is not in the kubeconfig (%s); `kubectl config get-contexts` lists the ones there are", spec.Name, spec.Context, p.Rules.GetDefaultFilename())
	}
	own := raw.DeepCopy()
	own.CurrentContext = spec.Context
	if err := clientcmdapi.MinifyConfig(own); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", spec.Name, err)
	}
	// Inline certificate files so the copy survives the originals moving.
	if err := clientcmdapi.FlattenConfig(own); err != nil {
		return nil, fmt.Errorf("cluster %q: read credentials of context %q: %w", spec.Name, spec.Context, err)
	}
	rest, err := clientcmd.NewDefaultClientConfig(*own, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster %q: context %q: %w", spec.Name, spec.Context, err)
	}
	rest.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, err
	}
	step := p.env.Progress.Start(fmt.Sprintf("check cluster %s (context %s)", spec.Name, spec.Context))
	_, err = cs.Discovery().ServerVersion()
	step.Done(err)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: context %q does not answer: %w", spec.Name, spec.Context, err)
	}
	dir := filepath.Join(p.env.StateDir, "clusters", spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	kc := filepath.Join(dir, "admin.kubeconfig")
	if err := clientcmd.WriteToFile(*own, kc); err != nil {
		return nil, fmt.Errorf("cluster %q: write kubeconfig: %w", spec.Name, err)
	}
	return &state.Cluster{
		Name: spec.Name, Role: spec.Role, Provider: Name,
		Endpoint: rest.Host, InternalEndpoint: rest.Host,
		Kubeconfig: kc, Context: spec.Context, Dir: dir, Created: time.Now().UTC(),
	}, nil
}

// Delete implements providers.Provider. The cluster itself is the user's and
// stays; only tether's own folder goes.
func (p *Provider) Delete(_ context.Context, c state.Cluster) error {
	if c.Dir == "" {
		return nil
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("remove folder of cluster %q: %w", c.Name, err)
	}
	return nil
}

// Problems implements providers.Provider: the API check the workbench runs
// says all there is to say about a cluster tether does not operate.
func (p *Provider) Problems(context.Context, state.Cluster) []string { return nil }

// Traits implements providers.Provider: the nodes are real, but tether has
// no image store to load its image into, so its components run as
// processes here; the cluster is the user's.
func (p *Provider) Traits() providers.Traits {
	return providers.Traits{LocalComponents: true, RunsContainers: true, Adopted: true}
}
