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
}

func (w *Workbench) describe(c state.Cluster) Cluster {
	return Cluster{
		Name: c.Name, Role: c.Role, Provider: c.Provider, Endpoint: c.Endpoint, InternalEndpoint: c.InternalEndpoint,
		Context: ContextName(c.Name), Kubeconfig: w.opts.Kubeconfig, AdminKubeconfig: c.Kubeconfig, Dir: c.Dir,
		Ports: append([]int(nil), c.Ports...),
	}
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
		return nil, fmt.Errorf("no cluster %q in the workbench (%s): run `tether up` or `tether status`", name, w.opts.StateDir)
	}
	return clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
}
