package providers

import (
	"context"
	"log/slog"

	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/cluster/progress"
)

// Roles of a cluster in the workbench.
const (
	RoleHub   = "hub"
	RoleSpoke = "spoke"
)

// Spec is what the workbench asks a provider for.
type Spec struct {
	Name string
	Role string
	// APIServerPort pins the API server's port on 127.0.0.1; 0 picks a free one.
	APIServerPort int
	// Context names the user's kubeconfig context (existing provider only).
	Context string
}

// Env is what every provider gets from the workbench.
type Env struct {
	// StateDir is the workbench's state folder; providers keep per-cluster
	// data below it.
	StateDir string
	// CacheDir holds built binaries and images, shared by all workbenches.
	CacheDir string
	CA       *pki.CA
	Log      *slog.Logger
	Progress progress.Reporter
	// NodeImage is the node image the user asked for (kind only; --node-image
	// or kind.nodeImage in tether.yaml). Empty lets the provider choose.
	NodeImage string
}

// Provider is one source of clusters.
type Provider interface {
	// Name is the provider's flag value.
	Name() string
	// Preflight returns an error saying what to install or start when this
	// provider cannot run here.
	Preflight(ctx context.Context) error
	// Ensure makes the cluster exist and answer. prev is what an earlier run
	// recorded for it, or nil: a provider reattaches to a healthy cluster and
	// restarts a broken one instead of creating it again.
	Ensure(ctx context.Context, spec Spec, prev *state.Cluster) (*state.Cluster, error)
	// Delete removes the cluster and everything the provider made for it.
	// Deleting something already gone is not an error.
	Delete(ctx context.Context, c state.Cluster) error
	// Problems lists what the provider knows is wrong with a cluster, e.g. a
	// dead process. The workbench adds API-level checks of its own.
	Problems(ctx context.Context, c state.Cluster) []string
	// Traits say how things run on the provider's clusters, so that the
	// workbench and what runs on it ask them instead of the provider's
	// name.
	Traits() Traits
}

// Traits are what a provider says of every cluster it makes. They are
// derived from the provider each time, never recorded, so a record written
// before a trait existed still answers it.
type Traits struct {
	// LocalComponents: tether's components (Git server, principal,
	// agents) run as processes on this machine, not as pods, because the
	// provider has no image store to give them tether's image.
	LocalComponents bool
	// RunsContainers: the nodes run containers. kwok's nodes run none, so
	// a pod there is only an object, however Running it says it is.
	RunsContainers bool
	// ServiceProxy: this machine reaches the cluster's Services only
	// through tether's service proxy, because the cluster has no
	// kube-proxy (nor any node network) for them.
	ServiceProxy bool
	// Adopted: the cluster is the user's, named by a kubeconfig context.
	// tether neither made its API server (so pins no port for it) nor may
	// delete it, only take back its own namespace.
	Adopted bool
}

// ImageLoader is a provider with an image store: an image archive can be
// loaded into every node of its clusters, so tether's components can run
// as pods there.
type ImageLoader interface {
	// LoadImageArchive loads a docker-archive tarball into every node of
	// the named cluster.
	LoadImageArchive(ctx context.Context, clusterName, archivePath string) error
}

// ProcessLister is a provider whose clusters are processes of this
// machine, which status lists.
type ProcessLister interface {
	Processes(c state.Cluster) []Process
}

// Process is one process of a cluster, as status shows it.
type Process struct {
	Name  string
	PID   int
	Alive bool
	Log   string
}

// Sweeper is a provider that can find clusters of this workbench that the
// record lacks, e.g. ones an interrupted `tether up` left half-made, because
// their names say which workbench they belong to.
type Sweeper interface {
	// Sweep deletes every cluster of the workbench whose name is not in
	// keep, recorded or not, and returns the names it deleted.
	Sweep(ctx context.Context, keep []string) ([]string, error)
}
