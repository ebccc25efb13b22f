package tui

import (
	"context"
	"time"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// Source is everything the screens read and do. The real one works on a
// cluster.Workbench; tests use a fake, so no screen needs a cluster.
type Source interface {
	// Status probes every cluster of the workbench: what is not in an API
	// server (process liveness, readiness). The UI calls it every few
	// seconds.
	Status(ctx context.Context) (Snapshot, error)
	// Live delivers what the watches on the hub see (its Applications and
	// Agents), one Live per burst of changes; nil if the source does not
	// watch, and then the screens list through Apps and Agents after each
	// probe. A source should keep at most the newest Live undelivered, so
	// a UI busy elsewhere never holds its watches up.
	Live() <-chan Live
	// Up and Down bring the workbench up (to the configured clusters) or
	// down; their steps arrive through the Reporter the workbench was built
	// with.
	Up(ctx context.Context) error
	Down(ctx context.Context) error
	// Apps lists the Applications of one cluster: on the hub those of
	// every namespace (it keeps one namespace per spoke), elsewhere those
	// in tether-system.
	Apps(ctx context.Context, cluster string) ([]v1alpha1.Application, error)
	// Sync requests a one-shot sync of an Application.
	Sync(ctx context.Context, cluster, namespace, app string) error
	// Refresh asks the engine to fetch Git and compare again now.
	Refresh(ctx context.Context, cluster, namespace, app string) error
	// Agents lists the hub's Agents, one per spoke.
	Agents(ctx context.Context) ([]v1alpha1.Agent, error)
	// MakeChange commits a new replica count for the sample to the sample
	// repository and returns the commit.
	MakeChange(ctx context.Context, replicas int) (string, error)
	// AddSpoke creates a spoke and brings the GitOps system up with it;
	// RemoveSpoke stops its agent, deletes its Applications on the hub and
	// the cluster. Both are `tether spoke add/remove`; their steps arrive
	// through the Reporter, like Up's.
	AddSpoke(ctx context.Context, name string) error
	RemoveSpoke(ctx context.Context, name string) error
	// Diff reports what a sync of an Application would apply, as `tether
	// app diff` does. It fetches Git and reads the cluster: slow, so the UI
	// asks only when the user opens the diff.
	Diff(ctx context.Context, cluster, namespace, app string) (Diff, error)
	// Intercepts lists the intercepts of every cluster.
	Intercepts(ctx context.Context) ([]InterceptInfo, error)
	// StartIntercept starts an intercept that this process holds until
	// StopIntercept or Close; it returns the intercept's name and where
	// this machine reaches the intercepted Service port (InterceptInfo's
	// Reach; "" when there is no way known).
	StartIntercept(ctx context.Context, spec InterceptSpec) (name, reach string, err error)
	// StopIntercept ends an intercept, held here or by another process.
	StopIntercept(ctx context.Context, cluster, name string) error
	// Scenarios lists the named scenarios there are to run.
	Scenarios(ctx context.Context) ([]ScenarioInfo, error)
	// RunScenario runs one and reports its steps on events as they start
	// and end; the error is the scenario's verdict (nil: passed). It must
	// not close events, and must stop sending when ctx ends (the UI stops
	// reading when it quits).
	RunScenario(ctx context.Context, name string, events chan<- ScenarioEvent) error
}

// Diff is what a sync would change.
type Diff struct {
	// Revision is the commit the target revision resolved to.
	Revision  string
	Resources []ResourceDiff
}

// ResourceDiff is one resource a sync would create, update or prune (or
// keep, when pruning is off). It copies engine.ResourceDiff so tests and
// other sources need not build an engine.
type ResourceDiff struct {
	Resource string
	Action   string
	// Unified is a unified diff of the fields Git sets, live → Git.
	Unified string
}

// InterceptInfo is one intercept as the Intercepts screen shows it.
type InterceptInfo struct {
	Name      string
	Cluster   string
	Namespace string
	Service   string
	Port      int32
	// Headers select the HTTP requests intercepted; empty means every
	// connection (a global intercept).
	Headers map[string]string
	// To is the local address traffic goes to; only an intercept this
	// process holds knows it.
	To string
	// Reach is where this machine reaches the intercepted Service port:
	// for an intercept this process holds, what its start opened (the
	// embedded service proxy, or a port-forward on kind); for others the
	// embedded service proxy's address. A URL when the port speaks HTTP
	// (as `tether intercept list` shows it), else host:port; "" when there
	// is no way known.
	Reach string
	Alive bool
	// Held: this process started it, and stops it when the UI quits.
	Held bool
	// Traffic is what the intercept has carried (connections or
	// requests), "-" while the intercept package does not count it.
	Traffic string
}

// InterceptSpec is what the start form asks for: the same as the flags of
// `tether intercept start`.
type InterceptSpec struct {
	Cluster, Namespace, Service string
	Port                        int32
	To                          string
	// Headers are NAME=VALUE pairs; none intercepts every connection.
	Headers []string
}

// Target is the <cluster>/<namespace>/<service> the CLI takes.
func (s InterceptSpec) Target() string { return s.Cluster + "/" + s.Namespace + "/" + s.Service }

// ScenarioInfo is one named scenario.
type ScenarioInfo struct {
	Name string
	// Description is one line saying what it shows.
	Description string
}

// ScenarioPhase says what happened to a step.
type ScenarioPhase int

// The phases of a scenario step.
const (
	StepStarted ScenarioPhase = iota
	StepPassed
	StepFailed
	// StepDetail updates a running step's detail line; an empty Step
	// means the step running last.
	StepDetail
	// StepPending announces a step before it runs, so the whole scenario
	// shows from the start (catalog.Observer.ScenarioStarted).
	StepPending
)

// ScenarioEvent is one step of a running scenario starting or ending.
// Steps are told apart by Step, their title.
type ScenarioEvent struct {
	Step  string
	Phase ScenarioPhase
	// Detail is what the step is doing now (StepDetail) or what it found.
	Detail string
	// Err is why the step failed (StepFailed).
	Err error
	// At is when it happened; zero means when the UI receives it.
	At time.Time
}

// Snapshot is one probe of the workbench.
type Snapshot struct {
	// StateDir is where the workbench keeps its records, shown when there
	// are no clusters so the user knows which workbench this is.
	StateDir string
	Provider string
	Clusters []ClusterInfo
	// Components are the GitOps system's processes (Git server, principal,
	// agents) on the embedded provider; their logs are on the Logs screen.
	Components []Process
}

// ClusterInfo is what the UI shows of one cluster. It copies
// cluster.ClusterStatus because that type's process list is of a type
// internal to the cluster package, which tests outside it cannot build.
type ClusterInfo struct {
	Name     string
	Role     string
	Provider string
	Endpoint string
	Context  string
	Ready    bool
	// Reason says why the cluster is not ready.
	Reason string
	// Nodes is "ready/total", empty when the API server does not answer.
	Nodes     string
	Processes []Process
}

// Process is one control-plane process of an embedded cluster.
type Process struct {
	Name  string
	PID   int
	Alive bool
	// Log is the process's log file, which the Logs screen follows.
	Log string
}
