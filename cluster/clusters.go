package cluster

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

// Roles a Cluster has.
const (
	RoleHub   = providers.RoleHub
	RoleSpoke = providers.RoleSpoke
)

// Cluster is what Up reports of one cluster.
type Cluster struct {
	Name string
	// Role is RoleHub or RoleSpoke.
	Role     string
	Provider string
	Endpoint string
	// InternalEndpoint is how the other clusters reach this API server.
	InternalEndpoint string
	// Context is the tether-<name> context merged into Kubeconfig.
	Context string
	// Kubeconfig is the user's kubeconfig holding Context.
	Kubeconfig string
	// AdminKubeconfig is tether's own copy of the cluster's credentials.
	AdminKubeconfig string
	// Dir holds the cluster's data and logs (embedded).
	Dir string
	// Ports are the loopback ports the cluster's processes listen on
	// (embedded).
	Ports []int
	// Warnings say what of the configuration Up did not apply to this
	// cluster, and what to do about it, one sentence each.
	Warnings []string
	// Traits are what the cluster's provider says of how things run on
	// it; ask them rather than Provider's name.
	Traits Traits
}

// Traits say how things run on a cluster, as its provider answers them:
// what the GitOps system, intercepts and the UI ask instead of switching
// on the provider's name. They are derived from the provider each time,
// never recorded, so a record an older tether wrote answers them too.
type Traits struct {
	// LocalComponents: tether's components (Git server, principal,
	// agents) run as processes on this machine, not as pods in the
	// cluster.
	LocalComponents bool
	// ImageStore: an image archive can be loaded into the cluster's nodes
	// (Workbench.LoadImage), so tether's own image can run there.
	ImageStore bool
	// RunsContainers: the nodes run containers. The embedded provider's
	// kwok nodes run none: a pod there is only an object, and whatever
	// should answer for it must run on this machine.
	RunsContainers bool
	// ServiceProxy: this machine reaches the cluster's Services only
	// through tether's service proxy (package svcproxy), because the
	// cluster has no kube-proxy; elsewhere a port-forward does.
	ServiceProxy bool
	// Adopted: the cluster is the user's, named by a kubeconfig context.
	// tether made only its namespace in it, and down removes only that.
	Adopted bool
}

// traitsOf asks a provider for its traits; whether it has an image store
// is whether it can load images, so the two cannot disagree.
func traitsOf(p providers.Provider) Traits {
	t := p.Traits()
	_, images := p.(providers.ImageLoader)
	return Traits{LocalComponents: t.LocalComponents, ImageStore: images, RunsContainers: t.RunsContainers,
		ServiceProxy: t.ServiceProxy, Adopted: t.Adopted}
}

// ProviderTraits are the traits of the named provider's clusters, for
// records that name a provider (the GitOps system's, say) rather than
// hold a Cluster.
func ProviderTraits(provider string) (Traits, error) {
	p, err := newProvider(provider, providers.Env{})
	if err != nil {
		return Traits{}, err
	}
	return traitsOf(p), nil
}

// traits are the traits of the named provider; none when the name is
// unknown (a record a later tether wrote), which claims nothing.
func (w *Workbench) traits(provider string) Traits {
	t, err := ProviderTraits(provider)
	if err != nil {
		w.opts.Logger.Debug("unknown provider in the record", "provider", provider, "err", err)
	}
	return t
}

func (w *Workbench) describe(c state.Cluster) Cluster {
	return Cluster{
		Name: c.Name, Role: c.Role, Provider: c.Provider, Endpoint: c.Endpoint, InternalEndpoint: c.InternalEndpoint,
		Context: ContextName(c.Name), Kubeconfig: w.opts.Kubeconfig, AdminKubeconfig: c.Kubeconfig, Dir: c.Dir,
		Ports: append([]int(nil), c.Ports...), Traits: w.traits(c.Provider),
	}
}

// RESTConfig returns admin credentials for the cluster from its own
// kubeconfig, without reading the workbench's record again: for callers
// that were given the cluster.
func (c Cluster) RESTConfig() (*rest.Config, error) {
	if c.AdminKubeconfig == "" {
		return nil, fmt.Errorf("cluster %q: no admin kubeconfig known", c.Name)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", c.Name, err)
	}
	return cfg, nil
}

// Clusters returns the workbench's clusters as recorded, without probing.
func (w *Workbench) Clusters() ([]Cluster, error) {
	st, err := w.store.Load()
	if err != nil {
		return nil, err
	}
	out := make([]Cluster, 0, len(st.Clusters))
	for _, c := range st.Clusters {
		out = append(out, w.describe(c))
	}
	return out, nil
}

// RESTConfig returns admin credentials for a workbench cluster.
func (w *Workbench) RESTConfig(name string) (*rest.Config, error) {
	st, err := w.store.Load()
	if err != nil {
		return nil, err
	}
	c, ok := st.Find(name)
	if !ok {
		return nil, &UnknownClusterError{Name: name, StateDir: w.opts.StateDir}
	}
	return clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
}
