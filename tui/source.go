package tui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/fleet"
)

// Source is everything the screens read and do. The real one works on a
// cluster.Workbench; tests use a fake, so no screen needs a cluster.
type Source interface {
	// Status probes every cluster of the workbench.
	Status(ctx context.Context) (Snapshot, error)
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

// WorkbenchSource is the Source over a real workbench. cfg is what `u`
// brings up; rep (may be nil) and logger receive the GitOps system's steps
// and logs during Up, the way the workbench's own go to them.
func WorkbenchSource(wb *cluster.Workbench, cfg cluster.Config, rep progress.Reporter, logger *slog.Logger) Source {
	return &workbenchSource{wb: wb, cfg: cfg, rep: rep, log: logger, clients: map[string]cachedClient{}}
}

type workbenchSource struct {
	wb  *cluster.Workbench
	cfg cluster.Config
	rep progress.Reporter
	log *slog.Logger

	// Dynamic clients are kept per cluster because the Applications screen
	// lists every few seconds; the endpoint is part of the key so a
	// cluster recreated on another port gets a fresh client.
	mu      sync.Mutex
	clients map[string]cachedClient
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
	return snap, nil
}

// Up does what `tether up` does: the clusters, then the GitOps system on
// them (Git server, principal, agents, sample Applications).
func (s *workbenchSource) Up(ctx context.Context) error {
	if _, err := s.wb.Up(ctx, s.cfg); err != nil {
		return err
	}
	if _, err := fleet.Up(ctx, fleet.Options{Workbench: s.wb, Progress: s.rep, Logger: s.log}); err != nil {
		return fmt.Errorf("the clusters are up, but the GitOps system is not: %w", err)
	}
	return nil
}

// Down stops the GitOps components first, as `tether down` does: they
// talk to the clusters and would log errors while those go away.
func (s *workbenchSource) Down(ctx context.Context) error {
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
		if c.Role == "hub" {
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

func (s *workbenchSource) Sync(ctx context.Context, name, ns, app string) error {
	res, err := s.apps(name, ns)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"operation": v1alpha1.Operation{
		ID: operationID(), InitiatedBy: "tui", Sync: &v1alpha1.SyncOperation{},
	}})
	if err != nil {
		return err
	}
	_, err = res.Patch(ctx, app, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

func (s *workbenchSource) Refresh(ctx context.Context, name, ns, app string) error {
	res, err := s.apps(name, ns)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		v1alpha1.AnnotationRefresh: time.Now().UTC().Format(time.RFC3339Nano),
	}}})
	if err != nil {
		return err
	}
	_, err = res.Patch(ctx, app, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// operationID must be unique per request: the engine runs an operation
// once per ID, so a repeated ID would be taken for a redelivery.
func operationID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}
