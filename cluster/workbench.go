package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/providers/embedded"
	"github.com/tether-dev/tether/cluster/internal/providers/existing"
	"github.com/tether-dev/tether/cluster/internal/providers/kind"
	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/cluster/progress"
)

// SystemNamespace holds tether's own components in every cluster. On
// existing clusters it is the only thing tether creates, and down removes it.
const SystemNamespace = "tether-system"

// managedByLabel marks objects tether created, so cleanup never touches
// anything else.
const managedByLabel = "app.kubernetes.io/managed-by"

// Options configure a Workbench. Zero values pick the defaults a user
// expects; tests point the folders and kubeconfig at temporary places.
type Options struct {
	// StateDir holds the state file, the CA and the embedded clusters' data.
	StateDir string
	// CacheDir holds compiled control-plane binaries, shared across
	// workbenches.
	CacheDir string
	// Kubeconfig is the file the tether-* contexts are merged into.
	Kubeconfig string
	Logger     *slog.Logger
	Progress   progress.Reporter
	// EngineCheck reports whether a Docker engine answers; it decides the
	// default provider. Nil asks the docker CLI.
	EngineCheck func(context.Context) error
}

// Workbench is one set of hub and spoke clusters.
type Workbench struct {
	opts  Options
	store state.Store
	// providerFor makes the named provider; tests replace it.
	providerFor func(name string, env providers.Env) (providers.Provider, error)
	// kindDoctor is what doctor asks the kind provider; tests replace it.
	kindDoctor func(ctx context.Context) (facts, warnings []string)
}

// DefaultStateDir is $TETHER_STATE_DIR, else $XDG_STATE_HOME/tether, else
// ~/.local/state/tether.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("TETHER_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tether"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state folder: %w (set TETHER_STATE_DIR)", err)
	}
	return filepath.Join(home, ".local", "state", "tether"), nil
}

// DefaultCacheDir is $TETHER_CACHE_DIR, else the user cache folder/tether.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("TETHER_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache folder: %w (set TETHER_CACHE_DIR)", err)
	}
	return filepath.Join(d, "tether"), nil
}

// New returns a workbench; it touches nothing until a method is called.
func New(opts Options) (*Workbench, error) {
	var err error
	if opts.StateDir == "" {
		if opts.StateDir, err = DefaultStateDir(); err != nil {
			return nil, err
		}
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if opts.Kubeconfig == "" {
		opts.Kubeconfig = DefaultKubeconfigPath()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard()
	}
	if opts.EngineCheck == nil {
		opts.EngineCheck = kind.EngineAnswers
	}
	w := &Workbench{opts: opts, store: state.Store{Dir: opts.StateDir}, providerFor: newProvider}
	w.kindDoctor = func(ctx context.Context) ([]string, []string) { return kind.New(w.env(nil)).Doctor(ctx) }
	return w, nil
}

// StateDir is where this workbench keeps its records.
func (w *Workbench) StateDir() string { return w.opts.StateDir }

// KubeconfigPath is the file holding the tether-* contexts.
func (w *Workbench) KubeconfigPath() string { return w.opts.Kubeconfig }

// ResolveProvider turns a requested provider ("" for automatic) into one
// that can run here, saying why when it cannot.
func (w *Workbench) ResolveProvider(ctx context.Context, requested string) (string, error) {
	switch requested {
	case "":
		if w.opts.EngineCheck(ctx) == nil {
			return ProviderKind, nil
		}
		return ProviderEmbedded, nil
	case ProviderKind:
		if err := w.opts.EngineCheck(ctx); err != nil {
			return "", fmt.Errorf("--provider kind needs a Docker engine: %w", err)
		}
		return ProviderKind, nil
	case ProviderEmbedded, ProviderExisting:
		return requested, nil
	}
	return "", fmt.Errorf("unknown provider %q: use one of %s", requested, strings.Join(ProviderNames(), ", "))
}

func (w *Workbench) env(ca *pki.CA) providers.Env {
	return providers.Env{StateDir: w.opts.StateDir, CacheDir: w.opts.CacheDir, CA: ca, Log: w.opts.Logger, Progress: w.opts.Progress}
}

func (w *Workbench) provider(name string, ca *pki.CA) (providers.Provider, error) {
	return w.providerFor(name, w.env(ca))
}

func newProvider(name string, env providers.Env) (providers.Provider, error) {
	switch name {
	case ProviderEmbedded:
		return embedded.New(env), nil
	case ProviderKind:
		return kind.New(env), nil
	case ProviderExisting:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		return existing.New(env, rules), nil
	}
	return nil, fmt.Errorf("unknown provider %q: use one of %s", name, strings.Join(ProviderNames(), ", "))
}

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

func (w *Workbench) deleteCluster(ctx context.Context, prov providers.Provider, c state.Cluster) error {
	if c.Provider == ProviderExisting && c.OwnsSystemNamespace {
		// The cluster is the user's: take back only what tether put in it.
		if err := deleteSystemNamespace(ctx, c.Kubeconfig); err != nil {
			w.opts.Logger.Warn("could not remove tether's namespace", "cluster", c.Name, "err", err)
		}
	}
	return prov.Delete(ctx, c)
}

// Down removes every cluster of the workbench, its kubeconfig contexts and
// its state folder. Existing clusters stay; only what tether created in them
// goes.
func (w *Workbench) Down(ctx context.Context) error {
	unlock, err := w.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := w.store.Load()
	if err != nil {
		return err
	}
	var errs []error
	var names []string
	provName := st.Provider
	if len(st.Clusters) == 0 && (provName == "" || provName == ProviderKind) {
		// Nothing recorded, yet an up interrupted mid-create, or a lost
		// state file, may have left kind clusters of this workbench, which
		// their names tell. Without an engine there is nothing to find,
		// and nothing recorded to fail on.
		provName = ""
		if w.opts.EngineCheck(ctx) == nil {
			provName = ProviderKind
		}
	}
	if provName != "" {
		prov, err := w.provider(provName, nil)
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var g errgroup.Group
		for _, c := range st.Clusters {
			names = append(names, c.Name)
			g.Go(func() error {
				step := w.opts.Progress.Start(fmt.Sprintf("delete %s %s", c.Role, c.Name))
				err := w.deleteCluster(ctx, prov, c)
				step.Done(err)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
		// Then whatever the record lacks: a create interrupted by Ctrl-C
		// leaves node containers that only their names tie to us.
		if sw, ok := prov.(providers.Sweeper); ok {
			swept, err := sw.Sweep(ctx, nil)
			if err != nil {
				errs = append(errs, fmt.Errorf("remove clusters the record lacks: %w", err))
			}
			names = append(names, swept...)
		}
	}
	if err := removeContexts(w.opts.Kubeconfig, names); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Keep the record so the next down can retry what failed.
		return errors.Join(errs...)
	}
	return w.clearStateDir()
}

// clearStateDir removes the state file and everything else in the folder
// (CA, data, logs): all of it belonged to the clusters just removed. The
// lock file stays because the caller holds it.
func (w *Workbench) clearStateDir() error {
	entries, _ := os.ReadDir(w.opts.StateDir)
	for _, e := range entries {
		if e.Name() == "lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(w.opts.StateDir, e.Name())); err != nil {
			return fmt.Errorf("remove %s: %w", e.Name(), err)
		}
	}
	return nil
}

// ProcessInfo is one control-plane process of an embedded cluster.
type ProcessInfo = embedded.ProcessInfo

// ClusterStatus is what status reports of one cluster.
type ClusterStatus struct {
	Cluster
	Ready bool
	// Reason says why the cluster is not ready, and what to do.
	Reason string
	// Nodes is "ready/total".
	Nodes     string
	Processes []ProcessInfo
}

// Status reports every cluster of the workbench; it never changes anything.
func (w *Workbench) Status(ctx context.Context) (provider string, out []ClusterStatus, err error) {
	st, err := w.store.Load()
	if err != nil {
		return "", nil, err
	}
	prov, err := w.provider(st.Provider, nil)
	if len(st.Clusters) > 0 && err != nil {
		return "", nil, err
	}
	out = make([]ClusterStatus, len(st.Clusters))
	var g errgroup.Group
	for i, c := range st.Clusters {
		g.Go(func() error {
			s := ClusterStatus{Cluster: w.describe(c)}
			if c.Provider == ProviderEmbedded {
				s.Processes = embedded.Processes(c)
			}
			problems := prov.Problems(ctx, c)
			nodes, apiErr := apiStatus(ctx, c.Kubeconfig)
			s.Nodes = nodes
			switch {
			case apiErr != nil && len(problems) > 0:
				s.Reason = problems[0] + "; run `tether up` to restart it"
			case apiErr != nil:
				s.Reason = fmt.Sprintf("API server does not answer: %v", apiErr)
			case len(problems) > 0:
				s.Reason = problems[0] + "; run `tether up` to restart it"
			default:
				s.Ready = true
			}
			out[i] = s
			return nil
		})
	}
	_ = g.Wait()
	return st.Provider, out, nil
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

func clientset(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

func apiStatus(ctx context.Context, kubeconfig string) (string, error) {
	cs, err := clientset(kubeconfig)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return "", err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	nodesStr := fmt.Sprintf("%d/%d", ready, len(nodes.Items))
	if ready == 0 {
		return nodesStr, errors.New("no node is Ready")
	}
	return nodesStr, nil
}

// ensureSystemNamespace creates tether's namespace and reports whether this
// call made it: on an existing cluster, down removes it only then.
func ensureSystemNamespace(ctx context.Context, kubeconfig string) (bool, error) {
	cs, err := clientset(kubeconfig)
	if err != nil {
		return false, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace, Labels: map[string]string{managedByLabel: "tether"}}}
	_, err = cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create namespace %s: %w", SystemNamespace, err)
	}
	return true, nil
}

func deleteSystemNamespace(ctx context.Context, kubeconfig string) error {
	cs, err := clientset(kubeconfig)
	if err != nil {
		return err
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, SystemNamespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Labels[managedByLabel] != "tether" {
		return nil // not ours: a namespace of that name the user made
	}
	err = cs.CoreV1().Namespaces().Delete(ctx, SystemNamespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// PrepareKind makes sure Docker has the kind provider's node image, as the
// first kind `up` would: the given image (pulled if Docker lacks it), else
// tether's offline-built image or kind's default one, pulling kind's or
// building tether's when Docker has neither. It returns the image.
func (w *Workbench) PrepareKind(ctx context.Context, nodeImage string) (string, error) {
	if err := validNodeImage(nodeImage); err != nil {
		return "", err
	}
	if err := w.opts.EngineCheck(ctx); err != nil {
		return "", fmt.Errorf("--provider kind needs a Docker engine: %w", err)
	}
	env := w.env(nil)
	env.NodeImage = nodeImage
	prov, err := w.providerFor(ProviderKind, env)
	if err != nil {
		return "", err
	}
	ip, ok := prov.(interface {
		NodeImage(context.Context) (string, error)
	})
	if !ok {
		return "", fmt.Errorf("the %s provider has no node image", prov.Name())
	}
	return ip.NodeImage(ctx)
}

// DockerEngineAnswers returns nil when a Docker engine (not just the docker
// client) answers, else an error saying what to start or install.
func DockerEngineAnswers(ctx context.Context) error { return kind.EngineAnswers(ctx) }

// LoadImage loads an image archive (docker-archive tarball) into every node
// of a kind cluster of the workbench. Other providers have no image store:
// their components run as local processes.
func (w *Workbench) LoadImage(ctx context.Context, name, archive string) error {
	st, err := w.store.Load()
	if err != nil {
		return err
	}
	c, ok := st.Find(name)
	if !ok {
		return fmt.Errorf("no cluster %q in the workbench", name)
	}
	if c.Provider != ProviderKind {
		return fmt.Errorf("cluster %q runs on the %s provider, which has no image store", name, c.Provider)
	}
	return kind.New(w.env(nil)).LoadImageArchive(ctx, name, archive)
}

// Provider returns the provider the workbench runs on ("" when down).
func (w *Workbench) Provider() (string, error) {
	st, err := w.store.Load()
	if err != nil {
		return "", err
	}
	return st.Provider, nil
}

// CA returns the workbench CA (created with the workbench).
func (w *Workbench) CA() (*pki.CA, error) {
	if _, err := os.Stat(filepath.Join(w.opts.StateDir, "pki", "ca.key")); err != nil {
		return nil, fmt.Errorf("the workbench has no CA yet: run `tether up` first")
	}
	return pki.LoadOrCreateCA(filepath.Join(w.opts.StateDir, "pki"), "tether workbench CA")
}
