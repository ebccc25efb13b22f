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
	"time"

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
// exist at that moment and a concurrent change cannot be lost. It runs
// upSteps in order; a step that does work a user waits for reports it on
// the progress reporter itself, so up's output names what it does, not
// the bookkeeping in between.
func (w *Workbench) reconcile(ctx context.Context, want func(*state.File) (Config, error)) ([]Cluster, error) {
	unlock, err := w.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &upRun{w: w, want: want}
	for _, s := range upSteps() {
		started := time.Now()
		err := s.run(ctx, r)
		w.opts.Logger.Debug("up step", "step", s.name, "took", time.Since(started), "err", err)
		if err != nil {
			if s.wrap {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			return nil, err
		}
	}
	return r.out, nil
}

// upStep is one named step of reconcile, in the manner of kind's create
// actions: a name and a function over the run's shared state.
type upStep struct {
	name string
	run  func(ctx context.Context, r *upRun) error
	// wrap prefixes the step's errors with its name. Steps whose errors
	// already say what failed and what to do, in words users and tests
	// rely on, leave it off.
	wrap bool
}

// upRun is what the steps of one reconcile share; each step reads what
// earlier ones set.
type upRun struct {
	w    *Workbench
	want func(*state.File) (Config, error)

	st  *state.File
	cfg Config
	// provName is the provider the clusters run on; checker is it made
	// without a CA, enough for its traits and its preflight.
	provName string
	checker  providers.Provider
	specs    []providers.Spec
	ca       *pki.CA
	// prov is the provider that makes the clusters.
	prov providers.Provider
	// removed are clusters this run deleted, whose contexts go too.
	removed []string
	out     []Cluster
}

// upSteps are the steps of reconcile, in order.
func upSteps() []upStep {
	return []upStep{
		{name: "read the record and the configuration", run: readRecordAndConfig},
		{name: "choose the provider", run: chooseProvider},
		{name: "check pinned API server ports", run: checkPinnedPorts},
		{name: "check that the provider can run here", run: preflight},
		{name: "load the workbench CA", run: loadCA, wrap: true},
		{name: "prepare the provider", run: prepareProvider},
		{name: "remove clusters no longer configured", run: removeUnwanted},
		{name: "remove clusters an interrupted up left", run: sweepLeftovers, wrap: true},
		{name: "record the provider", run: recordProvider},
		{name: "create or reattach the clusters", run: ensureClusters},
		{name: "record the clusters in order", run: recordOrder},
		{name: "merge the kubeconfig contexts", run: mergeKubeconfig},
		{name: "report the clusters", run: reportClusters},
	}
}

func readRecordAndConfig(_ context.Context, r *upRun) error {
	st, err := r.w.store.Load()
	if err != nil {
		return err
	}
	// want has checked the configuration (Up before the lock, AddSpoke and
	// RemoveSpoke in theirs): a second Validate would only repeat it.
	cfg, err := r.want(st)
	if err != nil {
		return err
	}
	r.st, r.cfg = st, cfg
	return nil
}

func chooseProvider(ctx context.Context, r *upRun) error {
	requested := r.cfg.Provider
	if requested == "" && len(r.st.Clusters) > 0 {
		requested = r.st.Provider // stay with what is running
	}
	provName, err := r.w.ResolveProvider(ctx, requested)
	if err != nil {
		return err
	}
	if len(r.st.Clusters) > 0 && r.st.Provider != provName {
		return &ProviderSwitchError{StateDir: r.w.opts.StateDir, Recorded: r.st.Provider, Requested: provName}
	}
	// Making a provider creates nothing; the CA it needs to make clusters
	// comes later, once nothing can refuse the run any more.
	checker, err := r.w.provider(provName, nil)
	if err != nil {
		return err
	}
	r.provName, r.checker = provName, checker
	return nil
}

// checkPinnedPorts refuses a pinned port something else holds before
// anything (the CA included) is made.
func checkPinnedPorts(_ context.Context, r *upRun) error {
	traits := r.checker.Traits()
	r.specs = make([]providers.Spec, 0, len(r.cfg.Spokes)+1)
	for i, c := range r.cfg.Clusters() {
		role := providers.RoleSpoke
		if i == 0 {
			role = providers.RoleHub
		}
		spec := providers.Spec{Name: c.Name, Role: role, APIServerPort: c.APIServerPort, Context: c.Context}
		prev, _ := r.st.Find(c.Name)
		if err := pinnedPortFree(traits, spec, prev); err != nil {
			return err
		}
		r.specs = append(r.specs, spec)
	}
	return nil
}

// preflight needs no CA; checking first means a provider that cannot run
// here leaves no CA behind either.
func preflight(ctx context.Context, r *upRun) error {
	if err := r.checker.Preflight(ctx); err != nil {
		return fmt.Errorf("the %s provider cannot run here: %w", r.provName, err)
	}
	return nil
}

func loadCA(_ context.Context, r *upRun) error {
	ca, err := pki.LoadOrCreateCA(filepath.Join(r.w.opts.StateDir, "pki"), "tether workbench CA")
	if err != nil {
		return err
	}
	r.ca = ca
	return nil
}

func prepareProvider(_ context.Context, r *upRun) error {
	env := r.w.env(r.ca)
	switch {
	case r.provName == ProviderKind:
		// kind: in tether.yaml is the kind provider's own configuration.
		env.NodeImage = r.cfg.Kind.NodeImage
		r.st.KindNodeImage = r.cfg.Kind.NodeImage
	case r.cfg.Kind.NodeImage != "":
		// Validate refuses it with an explicit other provider; here the
		// automatic choice fell on one without node images.
		r.w.opts.Logger.Warn("the node image is for the kind provider; ignoring it", "nodeImage", r.cfg.Kind.NodeImage, "provider", r.provName)
	}
	prov, err := r.w.providerFor(r.provName, env)
	if err != nil {
		return err
	}
	r.prov = prov
	return nil
}

// removeUnwanted deletes the recorded clusters no longer configured first,
// freeing their ports.
func removeUnwanted(ctx context.Context, r *upRun) error {
	wanted := map[string]bool{}
	for _, s := range r.specs {
		wanted[s.Name] = true
	}
	for _, c := range append([]state.Cluster(nil), r.st.Clusters...) {
		if wanted[c.Name] {
			continue
		}
		step := r.w.opts.Progress.Start(fmt.Sprintf("remove cluster %s (no longer configured)", c.Name))
		err := r.w.deleteCluster(ctx, r.prov, c)
		step.Done(err)
		if err != nil {
			return fmt.Errorf("remove cluster %q (no longer configured): %w", c.Name, err)
		}
		r.st.Remove(c.Name)
		r.removed = append(r.removed, c.Name)
	}
	return nil
}

// sweepLeftovers removes clusters of this workbench that no record lists
// (an earlier up was interrupted mid-create) and that are not wanted;
// wanted ones are repaired or adopted by Ensure.
func sweepLeftovers(ctx context.Context, r *upRun) error {
	sw, ok := r.prov.(providers.Sweeper)
	if !ok {
		return nil
	}
	keep := make([]string, 0, len(r.specs))
	for _, s := range r.specs {
		keep = append(keep, s.Name)
	}
	swept, err := sw.Sweep(ctx, keep)
	if err != nil {
		return err
	}
	r.removed = append(r.removed, swept...)
	return nil
}

func recordProvider(_ context.Context, r *upRun) error {
	if err := removeContexts(r.w.opts.Kubeconfig, r.removed); err != nil {
		return err
	}
	r.st.Provider = r.provName
	return r.w.store.Save(r.st)
}

// ensureClusters creates, reattaches or repairs every configured cluster
// in parallel, recording each as it is ready. If one fails, the clusters
// this run made are removed again; those that were there stay as they
// were.
func ensureClusters(ctx context.Context, r *upRun) error {
	w, st, prov := r.w, r.st, r.prov
	var mu sync.Mutex
	var created []state.Cluster
	// What each cluster was is read before any goroutine writes the
	// record: Find would race with the Puts below.
	prevs := make([]*state.Cluster, len(r.specs))
	for i, spec := range r.specs {
		if prev, ok := st.Find(spec.Name); ok {
			c := *prev
			prevs[i] = &c
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, spec := range r.specs {
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
	err := g.Wait()
	if err == nil {
		return nil
	}
	// Nothing half-created stays behind.
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
		return err
	}
	if serr := w.store.Save(st); serr != nil {
		err = errors.Join(err, serr)
	}
	return err
}

// recordOrder keeps the configured order (hub first) in the record and
// the output.
func recordOrder(_ context.Context, r *upRun) error {
	ordered := make([]state.Cluster, 0, len(r.specs))
	for _, s := range r.specs {
		c, _ := r.st.Find(s.Name)
		ordered = append(ordered, *c)
	}
	r.st.Clusters = ordered
	return r.w.store.Save(r.st)
}

func mergeKubeconfig(_ context.Context, r *upRun) error {
	step := r.w.opts.Progress.Start("merge kubeconfig contexts into " + r.w.opts.Kubeconfig)
	err := mergeContexts(r.w.opts.Kubeconfig, r.st.Clusters, r.cfg.Hub.Name)
	step.Done(err)
	return err
}

func reportClusters(_ context.Context, r *upRun) error {
	traits := r.prov.Traits()
	r.out = make([]Cluster, 0, len(r.st.Clusters))
	for i, c := range r.st.Clusters {
		d := r.w.describe(c)
		if msg := portNotApplied(traits, r.specs[i], c); msg != "" {
			d.Warnings = append(d.Warnings, msg)
		}
		r.out = append(r.out, d)
	}
	return nil
}

// portNotApplied says so when a cluster runs on another API server port
// than the configuration pins: a running cluster is reattached as it is
// (moving its API server would cut off every client of it, the GitOps
// components included), and a kind cluster's port is fixed when it is
// made. "" when the pin holds or there is none.
// An adopted cluster's port is the user's, never pinned.
func portNotApplied(t providers.Traits, spec providers.Spec, c state.Cluster) string {
	if spec.APIServerPort == 0 || t.Adopted {
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
// server. An adopted cluster's port is the user's, not tether's to check.
func pinnedPortFree(t providers.Traits, spec providers.Spec, prev *state.Cluster) error {
	if spec.APIServerPort == 0 || t.Adopted {
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
