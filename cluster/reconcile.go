package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/pki"
)

// Up brings the workbench to cfg: it creates missing clusters, reattaches to
// running ones, restarts broken ones, removes clusters no longer configured
// and merges a tether-<name> context per cluster into the kubeconfig. If a
// cluster cannot be made, the clusters this call created are removed again.
func (w *Workbench) Up(ctx context.Context, cfg Config) ([]Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return w.reconcile(ctx, func(*state.File) (Config, error) { return cfg, nil })
}

// reconcile is Up with the configuration computed from the record under
// the workbench lock, so AddSpoke and RemoveSpoke change the clusters that
// exist at that moment and a concurrent change cannot be lost.
func (w *Workbench) reconcile(ctx context.Context, want func(*state.File) (Config, error)) ([]Cluster, error) {
	unlock, err := w.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := w.store.Load()
	if err != nil {
		return nil, err
	}
	cfg, err := want(st)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	requested := cfg.Provider
	if requested == "" && len(st.Clusters) > 0 {
		requested = st.Provider // stay with what is running
	}
	provName, err := w.ResolveProvider(ctx, requested)
	if err != nil {
		return nil, err
	}
	if len(st.Clusters) > 0 && st.Provider != provName {
		return nil, fmt.Errorf("the workbench in %s runs on the %s provider: run `tether down` before switching to %s", w.opts.StateDir, st.Provider, provName)
	}
	// Pinned ports are checked before anything (the CA included) is made.
	specs := make([]providers.Spec, 0, len(cfg.Spokes)+1)
	for i, c := range cfg.Clusters() {
		role := providers.RoleSpoke
		if i == 0 {
			role = providers.RoleHub
		}
		spec := providers.Spec{Name: c.Name, Role: role, APIServerPort: c.APIServerPort, Context: c.Context}
		prev, _ := st.Find(c.Name)
		if err := pinnedPortFree(provName, spec, prev); err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	// Preflight needs no CA; checking first means a provider that cannot
	// run here leaves no CA behind either.
	checker, err := w.provider(provName, nil)
	if err != nil {
		return nil, err
	}
	if err := checker.Preflight(ctx); err != nil {
		return nil, fmt.Errorf("the %s provider cannot run here: %w", provName, err)
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(w.opts.StateDir, "pki"), "tether workbench CA")
	if err != nil {
		return nil, err
	}
	env := w.env(ca)
	switch {
	case provName == ProviderKind:
		env.NodeImage = cfg.Kind.NodeImage
		st.KindNodeImage = cfg.Kind.NodeImage
	case cfg.Kind.NodeImage != "":
		// Validate refuses it with an explicit other provider; here the
		// automatic choice fell on one without node images.
		w.opts.Logger.Warn("the node image is for the kind provider; ignoring it", "nodeImage", cfg.Kind.NodeImage, "provider", provName)
	}
	prov, err := w.providerFor(provName, env)
	if err != nil {
		return nil, err
	}

	// Clusters no longer in the configuration go first, freeing their ports.
	wanted := map[string]bool{}
	for _, s := range specs {
		wanted[s.Name] = true
	}
	var removed []string
	for _, c := range append([]state.Cluster(nil), st.Clusters...) {
		if wanted[c.Name] {
			continue
		}
		step := w.opts.Progress.Start(fmt.Sprintf("remove cluster %s (no longer configured)", c.Name))
		err := w.deleteCluster(ctx, prov, c)
		step.Done(err)
		if err != nil {
			return nil, err
		}
		st.Remove(c.Name)
		removed = append(removed, c.Name)
	}
	// Clusters of this workbench that no record lists (an earlier up was
	// interrupted mid-create) and that are not wanted go too; wanted ones
	// are repaired or adopted by Ensure.
	if sw, ok := prov.(providers.Sweeper); ok {
		keep := make([]string, 0, len(specs))
		for _, s := range specs {
			keep = append(keep, s.Name)
		}
		swept, err := sw.Sweep(ctx, keep)
		if err != nil {
			return nil, fmt.Errorf("remove clusters an interrupted up left: %w", err)
		}
		removed = append(removed, swept...)
	}
	if err := removeContexts(w.opts.Kubeconfig, removed); err != nil {
		return nil, err
	}
	st.Provider = provName
	if err := w.store.Save(st); err != nil {
		return nil, err
	}

	var mu sync.Mutex
	var created []state.Cluster
	// What each cluster was is read before any goroutine writes the
	// record: Find would race with the Puts below.
	prevs := make([]*state.Cluster, len(specs))
	for i, spec := range specs {
		if prev, ok := st.Find(spec.Name); ok {
			c := *prev
			prevs[i] = &c
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, spec := range specs {
		prevCopy := prevs[i]
		g.Go(func() error {
			c, err := prov.Ensure(gctx, spec, prevCopy)
			if err != nil {
				return fmt.Errorf("create %s %q: %w", spec.Role, spec.Name, err)
			}
			made, err := ensureSystemNamespace(gctx, c.Kubeconfig)
			if err != nil {
				if prevCopy == nil {
					_ = prov.Delete(context.WithoutCancel(gctx), *c)
				}
				return fmt.Errorf("create %s %q: %w", spec.Role, spec.Name, err)
			}
			c.OwnsSystemNamespace = made || (prevCopy != nil && prevCopy.OwnsSystemNamespace)
			mu.Lock()
			defer mu.Unlock()
			st.Put(*c)
			if prevCopy == nil {
				created = append(created, *c)
			}
			return w.store.Save(st)
		})
	}
	if err := g.Wait(); err != nil {
		// Nothing half-created stays behind: undo the clusters this run
		// made; clusters that were already there are left as they were.
		cleanup := context.WithoutCancel(ctx)
		for _, c := range created {
			step := w.opts.Progress.Start(fmt.Sprintf("remove cluster %s (up failed)", c.Name))
			step.Done(w.deleteCluster(cleanup, prov, c))
			st.Remove(c.Name)
		}
		if len(st.Clusters) == 0 {
			// Nothing runs: leave no CA or empty folders behind either.
			if cerr := w.clearStateDir(); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return nil, err
		}
		if serr := w.store.Save(st); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, err
	}
	// Keep the configured order (hub first) in the record and the output.
	ordered := make([]state.Cluster, 0, len(specs))
	for _, s := range specs {
		c, _ := st.Find(s.Name)
		ordered = append(ordered, *c)
	}
	st.Clusters = ordered
	if err := w.store.Save(st); err != nil {
		return nil, err
	}
	step := w.opts.Progress.Start("merge kubeconfig contexts into " + w.opts.Kubeconfig)
	err = mergeContexts(w.opts.Kubeconfig, ordered, cfg.Hub.Name)
	step.Done(err)
	if err != nil {
		return nil, err
	}
	out := make([]Cluster, 0, len(ordered))
	for i, c := range ordered {
		d := w.describe(c)
		if msg := portNotApplied(provName, specs[i], c); msg != "" {
			d.Warnings = append(d.Warnings, msg)
		}
		out = append(out, d)
	}
	return out, nil
}

// portNotApplied says so when a cluster runs on another API server port
// than the configuration pins: a running cluster is reattached as it is
// (moving its API server would cut off every client of it, the GitOps
// components included), and a kind cluster's port is fixed when it is
// made. "" when the pin holds or there is none.
func portNotApplied(provider string, spec providers.Spec, c state.Cluster) string {
	if spec.APIServerPort == 0 || provider == ProviderExisting {
		return ""
	}
	running := endpointPort(c.Endpoint)
	if running == 0 || running == spec.APIServerPort {
		return ""
	}
	return fmt.Sprintf("cluster %s keeps its API server on 127.0.0.1:%d, not the apiServerPort %d the configuration asks for: a running cluster keeps its port. "+
		"To move it, run `tether down` then `tether up` (that makes the clusters anew, without their objects); to keep it, set apiServerPort: %d for %s in tether.yaml or leave it out",
		spec.Name, running, spec.APIServerPort, running, spec.Name)
}

// pinnedPortFree refuses a pinned API server port that something else holds
// before anything is created, unless it is this cluster's own running API
// server.
func pinnedPortFree(provider string, spec providers.Spec, prev *state.Cluster) error {
	if spec.APIServerPort == 0 || provider == ProviderExisting {
		return nil
	}
	if prev != nil && endpointPort(prev.Endpoint) == spec.APIServerPort {
		return nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.APIServerPort)))
	if err != nil {
		return fmt.Errorf("cluster %q: API server port %d on 127.0.0.1 is already in use: stop what listens there or set another apiServerPort (0 picks a free one)", spec.Name, spec.APIServerPort)
	}
	return l.Close()
}

func endpointPort(endpoint string) int {
	u, err := url.Parse(endpoint)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}
