package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/fleet"
)

// WorkbenchSource is the Source over a real workbench (opts.Workbench).
// Its actions call the domain functions the CLI's commands call (fleet's
// UpWorkbench, AddSpoke and RemoveSpoke, intercept.StartOnWorkbench,
// catalog.NewRunner), so the two skins cannot drift apart; rep (may be
// nil) and logger receive their steps and logs, the way the workbench's
// own go to them.
func WorkbenchSource(opts Options, rep progress.Reporter, logger *slog.Logger) Source {
	return &workbenchSource{
		wb: opts.Workbench, rep: rep, log: logger, cacheDir: opts.CacheDir, verbosity: opts.Verbosity,
		clients: map[string]cachedClient{}, held: map[string]*heldIntercept{},
		live: make(chan Live, 1),
	}
}

type workbenchSource struct {
	wb        *cluster.Workbench
	rep       progress.Reporter
	log       *slog.Logger
	cacheDir  string
	verbosity int

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

func (s *workbenchSource) clientset(name string) (kubernetes.Interface, error) {
	cfg, err := s.wb.RESTConfig(name)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	cfg.WarningHandler = rest.NoWarnings{}
	return kubernetes.NewForConfig(cfg)
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
