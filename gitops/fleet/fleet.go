package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
)

// Names the system uses.
const (
	// SampleRepo is the repository the Git server is seeded with.
	SampleRepo = "sample"
	// SampleApp is the Application created per spoke.
	SampleApp = "sample"
	// SampleNamespace is where the sample lands on each spoke.
	SampleNamespace = "sample"
	// principalServerName is in the principal's certificate and is what
	// agents verify, on both providers.
	principalServerName = "tether-principal.tether-system.svc"
)

// Options configure Up and Down.
type Options struct {
	Workbench *cluster.Workbench
	// Bin is the tether binary: child processes run it (embedded), and on
	// kind it goes into the image as it is when it is a static Linux
	// binary for the nodes' platform. Empty means the running one.
	Bin string
	// ModuleRoot is tether's source checkout, from which kind's image is
	// cross-compiled when Bin does not fit the nodes; empty means the
	// working directory or a parent of it.
	ModuleRoot string
	Progress   progress.Reporter
	Logger     *slog.Logger
	// Wait bounds the wait for every spoke to be Synced and Healthy.
	Wait time.Duration
	// Clusters are the workbench's clusters as cluster.Workbench.Up
	// returned them; nil reads them from the workbench's record.
	Clusters []cluster.Cluster
}

func (o *Options) defaults() error {
	if o.Workbench == nil {
		return errors.New("fleet: no workbench")
	}
	if o.Progress == nil {
		o.Progress = progress.Discard()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wait == 0 {
		o.Wait = 5 * time.Minute
	}
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Bin = exe
	}
	return nil
}

// hubAndSpokes splits clusters by role.
func hubAndSpokes(clusters []cluster.Cluster) (cluster.Cluster, []cluster.Cluster, error) {
	var hub *cluster.Cluster
	var spokes []cluster.Cluster
	for i, c := range clusters {
		switch {
		case c.Role == cluster.RoleHub && hub != nil:
			return cluster.Cluster{}, nil, &DamagedError{fmt.Errorf("the workbench has two hubs, %q and %q", hub.Name, c.Name)}
		case c.Role == cluster.RoleHub:
			hub = &clusters[i]
		default:
			spokes = append(spokes, c)
		}
	}
	if hub == nil {
		if len(clusters) == 0 {
			return cluster.Cluster{}, nil, &cluster.NoClustersError{}
		}
		return cluster.Cluster{}, nil, ErrNoHub
	}
	return *hub, spokes, nil
}

// Up brings the system up on the workbench's clusters, or reattaches to it.
func Up(ctx context.Context, opts Options) (*State, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	wb := opts.Workbench
	clusters, err := opts.clusters()
	if err != nil {
		return nil, err
	}
	hub, spokes, err := hubAndSpokes(clusters)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir(wb), 0o700); err != nil {
		return nil, err
	}
	prev, err := Load(wb)
	if err != nil {
		return nil, err
	}
	ca, err := wb.CA()
	if err != nil {
		return nil, err
	}
	if err := writeCertificates(wb, ca, hub, spokes); err != nil {
		return nil, err
	}
	var st *State
	if componentsAsPods(hub.Traits) {
		st, err = upPods(ctx, opts, hub, spokes)
	} else {
		st, err = upLocal(ctx, opts, prev, hub, spokes)
	}
	if err != nil {
		return nil, err
	}
	if err := save(wb, st); err != nil {
		return nil, err
	}
	// Before the sample Applications: a spoke of the same name added back
	// must not meet its predecessor's namespace still terminating.
	if err := pruneLeftSpokes(ctx, opts, prev, hub, spokes); err != nil {
		return st, err
	}
	if err := createSampleApps(ctx, opts, st, hub, spokes); err != nil {
		return st, err
	}
	if err := waitSynced(ctx, opts, hub, spokes); err != nil {
		return st, err
	}
	return st, waitSampleAnswers(ctx, opts, st)
}

// Down stops the components. Clusters are the workbench's business; on
// kind they disappear with their pods.
func Down(ctx context.Context, wb *cluster.Workbench) error {
	st, err := Load(wb)
	if err != nil || st == nil {
		return err
	}
	stopAll(ctx, st.Processes)
	return os.RemoveAll(dir(wb))
}

// componentsAsPods says whether tether's components run as pods of its
// own image: only where the provider can load that image into the nodes
// and does not run them as local processes instead. Anything else (traits
// a caller left zero included) runs them here, as up always has.
func componentsAsPods(t cluster.Traits) bool { return t.ImageStore && !t.LocalComponents }

// standsInForSample says whether up runs the sample's stand-ins on this
// machine: the nodes run no containers (kwok), so a tether sample server
// answers for the sample's pods, and this machine reaches its Service
// through tether's service proxy.
func standsInForSample(t cluster.Traits) bool { return !t.RunsContainers && t.ServiceProxy }

// recordedTraits are the traits of the provider a record names: the
// record keeps the provider's name, never its traits, so a record an
// older tether wrote answers them too. An unknown name claims nothing.
func recordedTraits(st *State) cluster.Traits {
	if st == nil {
		return cluster.Traits{}
	}
	t, _ := cluster.ProviderTraits(st.Provider)
	return t
}

// clusters are the workbench's clusters: those the caller gave, else the
// workbench's record.
func (o Options) clusters() ([]cluster.Cluster, error) {
	if o.Clusters != nil {
		return o.Clusters, nil
	}
	return o.Workbench.Clusters()
}

// hubOf finds the hub of the workbench's record by its role, for
// operations that are given no clusters.
func hubOf(wb *cluster.Workbench) (cluster.Cluster, error) {
	clusters, err := wb.Clusters()
	if err != nil {
		return cluster.Cluster{}, err
	}
	hub, _, err := hubAndSpokes(clusters)
	return hub, err
}

func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
