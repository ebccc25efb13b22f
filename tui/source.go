package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/appops"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/intercept"
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

// WorkbenchSource is the Source over a real workbench (opts.Workbench).
// opts.Config is what `u` brings up; rep (may be nil) and logger receive
// the GitOps system's steps and logs during Up, the way the workbench's own
// go to them. The actions that live in the tether command come in through
// opts (AddSpoke, RemoveSpoke, StartIntercept).
func WorkbenchSource(opts Options, rep progress.Reporter, logger *slog.Logger) Source {
	return &workbenchSource{
		wb: opts.Workbench, cfg: opts.Config, rep: rep, log: logger, cacheDir: opts.CacheDir,
		addSpoke: opts.AddSpoke, removeSpoke: opts.RemoveSpoke, startIntercept: opts.StartIntercept,
		scenarios: opts.Scenarios, runScenario: opts.RunScenario,
		clients: map[string]cachedClient{}, held: map[string]*heldIntercept{},
		live: make(chan Live, 1),
	}
}

type workbenchSource struct {
	wb       *cluster.Workbench
	cfg      cluster.Config
	rep      progress.Reporter
	log      *slog.Logger
	cacheDir string

	addSpoke, removeSpoke func(context.Context, string) error
	startIntercept        func(context.Context, InterceptSpec) (*intercept.Intercept, error)
	scenarios             func(context.Context) ([]ScenarioInfo, error)
	runScenario           func(context.Context, string, chan<- ScenarioEvent) error

	// Dynamic clients are kept per cluster because the Applications screen
	// lists every few seconds; the endpoint is part of the key so a
	// cluster recreated on another port gets a fresh client.
	mu      sync.Mutex
	clients map[string]cachedClient
	// held are the intercepts this process started, by cluster/name; they
	// end when the UI does (Close).
	held map[string]*heldIntercept

	// live carries the newest Live not yet taken (capacity 1); liveMu
	// makes replacing it one step.
	live   chan Live
	liveMu sync.Mutex
	// watch is the running watch on the hub, nil while there is none;
	// watchMu guards it and closed (after Close no watch starts).
	watchMu sync.Mutex
	watch   *hubWatch
	closed  bool
}

type heldIntercept struct {
	i         *intercept.Intercept
	to, reach string
	// cancel ends the watch hold started on the intercept; whoever takes
	// the intercept out of held (StopIntercept, Close) calls it.
	cancel context.CancelFunc
}

type cachedClient struct {
	host string
	dyn  dynamic.Interface
}

func (s *workbenchSource) Status(ctx context.Context) (Snapshot, error) {
	provider, clusters, err := s.wb.Status(ctx)
	if err != nil {
		return Snapshot{StateDir: s.wb.StateDir()}, err
	}
	snap := Snapshot{StateDir: s.wb.StateDir(), Provider: provider}
	for _, c := range clusters {
		info := ClusterInfo{
			Name: c.Name, Role: c.Role, Provider: c.Provider, Endpoint: c.Endpoint, Context: c.Context,
			Ready: c.Ready, Reason: c.Reason, Nodes: c.Nodes,
		}
		for _, p := range c.Processes {
			info.Processes = append(info.Processes, Process{Name: p.Name, PID: p.PID, Alive: p.Alive, Log: p.Log})
		}
		snap.Clusters = append(snap.Clusters, info)
	}
	// A damaged fleet record must not hide the clusters: the components
	// are left out and the reason logged (`tether down` repairs it).
	comps, err := fleet.Components(s.wb)
	if err != nil {
		s.log.Warn("GitOps components", "err", err)
	}
	for _, c := range comps {
		snap.Components = append(snap.Components, Process{Name: c.Name, PID: c.PID, Alive: c.Alive, Log: c.Log})
	}
	s.watchHub(snap)
	return snap, nil
}

func (s *workbenchSource) Live() <-chan Live { return s.live }

// sendLive replaces what is waiting on s.live with l: the UI wants the
// newest state, and the informers must never wait for it.
func (s *workbenchSource) sendLive(l Live) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	select {
	case s.live <- l:
	default:
		select {
		case <-s.live:
		default:
		}
		s.live <- l // the only sender holds liveMu, so there is room now
	}
}

// watchHub keeps the hub's watches in step with the probe: running while
// the hub is ready, restarted when it comes back on another endpoint, and
// stopped when it is gone.
func (s *workbenchSource) watchHub(snap Snapshot) {
	var hub *ClusterInfo
	for i := range snap.Clusters {
		if snap.Clusters[i].Role == cluster.RoleHub {
			hub = &snap.Clusters[i]
			break
		}
	}
	if hub == nil || !hub.Ready {
		s.stopWatch()
		return
	}
	cfg, err := s.wb.RESTConfig(hub.Name)
	if err != nil {
		s.stopWatch()
		return
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.closed || s.watch != nil && s.watch.hub == hub.Name && s.watch.host == cfg.Host {
		return
	}
	s.stopWatchLocked()
	// No client timeout: it would cut every watch after that long.
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		s.log.Warn("watch the hub", "hub", hub.Name, "err", err)
		return
	}
	s.log.Info("watching the hub's Applications and Agents", "hub", hub.Name, "endpoint", cfg.Host)
	s.watch = startHubWatch(dyn, hub.Name, cfg.Host, s.sendLive, s.log)
}

func (s *workbenchSource) stopWatch() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.stopWatchLocked()
}

// stopWatchLocked stops the watch and tells the UI, which lists through
// the Source again.
func (s *workbenchSource) stopWatchLocked() {
	if s.watch == nil {
		return
	}
	s.log.Info("stopped watching the hub", "hub", s.watch.hub)
	s.watch.close()
	s.watch = nil
	s.sendLive(Live{})
}

// Down stops the GitOps components first, as `tether down` does: they
// talk to the clusters and would log errors while those go away.
func (s *workbenchSource) Down(ctx context.Context) error {
	s.stopWatch() // the next probe starts it again if the hub stays
	if err := fleet.Down(ctx, s.wb); err != nil {
		return fmt.Errorf("stop the GitOps system: %w", err)
	}
	return s.wb.Down(ctx)
}

func (s *workbenchSource) MakeChange(ctx context.Context, replicas int) (string, error) {
	return fleet.MakeChange(ctx, s.wb, replicas)
}

// hub is the workbench's hub: the cluster whose role says so, else the
// first one (the workbench lists the hub first).
func (s *workbenchSource) hub() (cluster.Cluster, error) {
	clusters, err := s.wb.Clusters()
	if err != nil {
		return cluster.Cluster{}, err
	}
	if len(clusters) == 0 {
		return cluster.Cluster{}, errors.New("the workbench has no clusters")
	}
	for _, c := range clusters {
		if c.Role == cluster.RoleHub {
			return c, nil
		}
	}
	return clusters[0], nil
}

func (s *workbenchSource) Agents(ctx context.Context) ([]v1alpha1.Agent, error) {
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	dyn, err := s.dynamic(hub.Name)
	if err != nil {
		return nil, err
	}
	list, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no Agent API on the hub %s yet (the CRD is not installed): bring the workbench up with u on the Clusters screen", hub.Name)
		}
		return nil, err
	}
	out := make([]v1alpha1.Agent, 0, len(list.Items))
	for i := range list.Items {
		var a v1alpha1.Agent
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &a); err != nil {
			return nil, fmt.Errorf("decode Agent %s: %w", list.Items[i].GetName(), err)
		}
		out = append(out, a)
	}
	return out, nil
}

// apps is the Applications resource of one cluster in namespace ns (""
// is every namespace).
func (s *workbenchSource) apps(name, ns string) (dynamic.ResourceInterface, error) {
	dyn, err := s.dynamic(name)
	if err != nil {
		return nil, err
	}
	return dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns), nil
}

func (s *workbenchSource) dynamic(name string) (dynamic.Interface, error) {
	cfg, err := s.wb.RESTConfig(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[name]
	if !ok || c.host != cfg.Host {
		cfg.Timeout = 5 * time.Second
		// client-go prints API warnings to stderr by default, which would
		// scribble over the screen.
		cfg.WarningHandler = rest.NoWarnings{}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		c = cachedClient{host: cfg.Host, dyn: dyn}
		s.clients[name] = c
	}
	return c.dyn, nil
}

func (s *workbenchSource) Apps(ctx context.Context, name string) ([]v1alpha1.Application, error) {
	ns := cluster.SystemNamespace
	if hub, err := s.hub(); err == nil && hub.Name == name {
		ns = metav1.NamespaceAll
	}
	res, err := s.apps(name, ns)
	if err != nil {
		return nil, err
	}
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		// A cluster without the GitOps system is normal (nothing installed
		// yet), so say that instead of quoting a 404.
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no Application API here yet (the CRD is not installed)")
		}
		return nil, err
	}
	out := make([]v1alpha1.Application, 0, len(list.Items))
	for i := range list.Items {
		var app v1alpha1.Application
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &app); err != nil {
			return nil, fmt.Errorf("decode Application %s: %w", list.Items[i].GetName(), err)
		}
		out = append(out, app)
	}
	return out, nil
}

// appOps is the Application operations of one cluster, the same code
// `tether app` runs (gitops/appops), so the two cannot drift apart.
func (s *workbenchSource) appOps(name string) (*appops.Client, error) {
	cfg, err := s.wb.RESTConfig(name)
	if err != nil {
		return nil, err
	}
	dyn, err := s.dynamic(name)
	if err != nil {
		return nil, err
	}
	return appops.New(appops.Options{Config: cfg, Dynamic: dyn, Workbench: s.wb, Cluster: name, CacheDir: s.cacheDir, Logger: s.log, InitiatedBy: "tui",
		ReachRepo: func(ctx context.Context, repoURL string) (string, func(), error) {
			return fleet.ReachRepo(ctx, s.wb, repoURL)
		}})
}

func (s *workbenchSource) Sync(ctx context.Context, name, ns, app string) error {
	c, err := s.appOps(name)
	if err != nil {
		return err
	}
	_, err = c.Sync(ctx, ns, app, appops.SyncRequest{})
	return err
}

func (s *workbenchSource) Refresh(ctx context.Context, name, ns, app string) error {
	c, err := s.appOps(name)
	if err != nil {
		return err
	}
	_, err = c.Refresh(ctx, ns, app)
	return err
}

// errNoHook is what an action the tether command did not supply reports
// (a Source built without it, as in an embedding program).
func errNoHook(what string) error {
	return fmt.Errorf("%s is not available in this program: run it with the tether command", what)
}

// AddSpoke and RemoveSpoke also keep cfg in step, so a later `u` brings up
// the spokes the user has now instead of undoing the change.
func (s *workbenchSource) AddSpoke(ctx context.Context, name string) error {
	if s.addSpoke == nil {
		return errNoHook("adding a spoke")
	}
	if err := s.addSpoke(ctx, name); err != nil {
		return err
	}
	s.syncConfig()
	return nil
}

func (s *workbenchSource) RemoveSpoke(ctx context.Context, name string) error {
	if s.removeSpoke == nil {
		return errNoHook("removing a spoke")
	}
	err := s.removeSpoke(ctx, name)
	s.syncConfig() // also after a failure: the cluster may be gone already
	return err
}

func (s *workbenchSource) syncConfig() {
	rec, err := s.wb.RecordedConfig()
	if err != nil || rec.Hub.Name == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Hub.Name, s.cfg.Spokes = rec.Hub.Name, rec.Spokes
}

// Up does what `tether up` does: the clusters, then the GitOps system on
// them (Git server, principal, agents, sample Applications).
func (s *workbenchSource) Up(ctx context.Context) error {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	clusters, err := s.wb.Up(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := fleet.Up(ctx, fleet.Options{Workbench: s.wb, Clusters: clusters, Progress: s.rep, Logger: s.log}); err != nil {
		return fmt.Errorf("the clusters are up, but the GitOps system is not: %w", err)
	}
	return nil
}

// Diff is what `tether app diff` computes (gitops/appops): an Application
// on the hub is compared with the spoke it is for, through the spoke's copy.
func (s *workbenchSource) Diff(ctx context.Context, name, ns, app string) (Diff, error) {
	c, err := s.appOps(name)
	if err != nil {
		return Diff{}, err
	}
	d, err := c.Diff(ctx, ns, app, false)
	if err != nil {
		return Diff{}, err
	}
	out := Diff{Revision: d.Revision}
	for _, r := range d.Resources {
		out.Resources = append(out.Resources, ResourceDiff{Resource: r.Resource, Action: r.Action, Unified: r.Unified})
	}
	return out, nil
}

// interceptRow is the one place an intercept.Status becomes a row. The
// counters come from the traffic-agent's Lease, so they are the same for
// intercepts this UI holds and those another process holds.
func interceptRow(clusterName string, st intercept.Status) InterceptInfo {
	traffic := fmt.Sprintf("%d conns", st.Connections)
	if len(st.Headers) > 0 {
		traffic += fmt.Sprintf(" / %d reqs", st.Requests)
	}
	return InterceptInfo{
		Name: st.Name, Cluster: clusterName, Namespace: st.Namespace, Service: st.Service, Port: st.Port,
		Headers: st.Headers, Alive: st.Alive,
		Traffic: traffic,
	}
}

func (s *workbenchSource) clientset(name string) (kubernetes.Interface, error) {
	cfg, err := s.wb.RESTConfig(name)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	cfg.WarningHandler = rest.NoWarnings{}
	return kubernetes.NewForConfig(cfg)
}

func (s *workbenchSource) Intercepts(ctx context.Context) ([]InterceptInfo, error) {
	clusters, err := s.wb.Clusters()
	if err != nil {
		return nil, err
	}
	var out []InterceptInfo
	var errs []error
	for _, c := range clusters {
		cs, err := s.clientset(c.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			continue
		}
		list, err := intercept.List(ctx, cs)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
		for _, st := range list {
			r := interceptRow(c.Name, st)
			s.mu.Lock()
			if h, ok := s.held[r.Cluster+"/"+r.Name]; ok {
				r.Held, r.To, r.Reach = true, h.to, h.reach
			}
			s.mu.Unlock()
			if r.Reach == "" {
				// A port-forward the intercept's holder (intercept start in
				// another terminal) opened and recorded.
				r.Reach = intercept.RecordedReach(s.wb.StateDir(), st.Record)
			}
			if r.Reach == "" && c.Provider == cluster.ProviderEmbedded {
				r.Reach = s.embeddedReach(ctx, cs, r)
			}
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Cluster+"/"+out[i].Name < out[j].Cluster+"/"+out[j].Name
	})
	return out, errors.Join(errs...)
}

// embeddedReach is where this machine reaches the Service port of r on
// an embedded cluster (fleet.ReachService); "" when its service proxy does
// not serve it.
func (s *workbenchSource) embeddedReach(ctx context.Context, cs kubernetes.Interface, r InterceptInfo) string {
	url, err := fleet.ReachService(ctx, s.wb, cs, r.Cluster, r.Namespace, r.Service, r.Port)
	if err != nil {
		s.log.Debug("no service proxy address for the intercepted Service", "intercept", r.Cluster+"/"+r.Name, "err", err)
		return ""
	}
	return url
}

func (s *workbenchSource) StartIntercept(ctx context.Context, spec InterceptSpec) (string, string, error) {
	if s.startIntercept == nil {
		return "", "", errNoHook("starting an intercept")
	}
	i, err := s.startIntercept(ctx, spec)
	if err != nil {
		return "", "", err
	}
	rec := i.Record()
	key := spec.Cluster + "/" + rec.Name
	s.hold(key, &heldIntercept{i: i, to: spec.To, reach: i.Reach()}, i.Wait, func(err error) {
		// Stopped elsewhere (its Lease deleted) or its session lost: what
		// is left here is the proxy and the session, released now.
		s.log.Warn("intercept ended outside the UI", "intercept", key, "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := i.Stop(ctx); serr != nil {
			s.log.Debug("release the ended intercept", "intercept", key, "err", serr)
		}
	})
	return rec.Name, i.Reach(), nil
}

// hold records h under key and watches it through wait: an intercept that
// ends on its own (wait returns before the watch is cancelled) leaves held,
// so the next probe shows it as what the cluster says, no longer held, and
// ended runs. A new intercept under the same key is not touched.
func (s *workbenchSource) hold(key string, h *heldIntercept, wait func(context.Context) error, ended func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	s.mu.Lock()
	s.held[key] = h
	s.mu.Unlock()
	go func() {
		err := wait(ctx)
		if ctx.Err() != nil {
			return // taken out of held here, by StopIntercept or Close
		}
		s.mu.Lock()
		mine := s.held[key] == h
		if mine {
			delete(s.held, key)
		}
		s.mu.Unlock()
		cancel()
		if mine {
			ended(err)
		}
	}()
}

// StopIntercept stops an intercept this process holds through its handle
// (which also closes its proxy and session), any other through the
// cluster, as `tether intercept stop` does.
func (s *workbenchSource) StopIntercept(ctx context.Context, clusterName, name string) error {
	s.mu.Lock()
	h, ok := s.held[clusterName+"/"+name]
	delete(s.held, clusterName+"/"+name)
	s.mu.Unlock()
	if ok {
		h.cancel()
		return h.i.Stop(ctx)
	}
	cs, err := s.clientset(clusterName)
	if err != nil {
		return err
	}
	return intercept.StopByName(ctx, cs, name)
}

// Close stops the hub's watches and the intercepts this process holds:
// those would otherwise outlive the UI until their Lease expired. Run
// calls it when the UI ends.
func (s *workbenchSource) Close() error {
	s.watchMu.Lock()
	s.closed = true
	s.stopWatchLocked()
	s.watchMu.Unlock()
	s.mu.Lock()
	held := s.held
	s.held = map[string]*heldIntercept{}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for key, h := range held {
		h.cancel()
		if err := h.i.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop intercept %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// Scenarios lists the catalog through Options.Scenarios; without it the
// screen says that no scenarios are wired.
func (s *workbenchSource) Scenarios(ctx context.Context) ([]ScenarioInfo, error) {
	if s.scenarios == nil {
		return nil, nil
	}
	return s.scenarios(ctx)
}

// RunScenario runs one scenario through Options.RunScenario (see Source).
func (s *workbenchSource) RunScenario(ctx context.Context, name string, events chan<- ScenarioEvent) error {
	if s.runScenario == nil {
		return fmt.Errorf("no scenario %q: no scenarios are wired into this build", name)
	}
	return s.runScenario(ctx, name, events)
}

// joinHeaders shows an intercept's header match as the CLI's list does.
func joinHeaders(h map[string]string) string {
	if len(h) == 0 {
		return "global"
	}
	parts := make([]string, 0, len(h))
	for k, v := range h {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
