package appops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/engine"
)

// Workbench is what appops needs of a workbench (cluster.Workbench): which
// cluster is the hub and which are spokes, and credentials for each.
type Workbench interface {
	RecordedConfig() (cluster.Config, error)
	RESTConfig(name string) (*rest.Config, error)
}

// Options configure a Client.
type Options struct {
	// Config reaches the cluster holding the Applications.
	Config *rest.Config
	// Dynamic, if set, is the client used for Config's cluster (a caller
	// that keeps clients per cluster passes its own).
	Dynamic dynamic.Interface
	// Workbench and Cluster say which workbench cluster Config reaches;
	// with Cluster empty (or no Workbench) the cluster is taken for one
	// that runs its Applications itself.
	Workbench Workbench
	Cluster   string
	// CacheDir holds the Git copies a diff fetches into (its "diff"
	// folder); default cluster.DefaultCacheDir().
	CacheDir string
	Logger   *slog.Logger
	// InitiatedBy names who asks for syncs (operation.initiatedBy).
	InitiatedBy string
	// Poll is how often the waits read the Application; default 200ms.
	Poll time.Duration
	// ReachRepo, if set, says where this machine fetches an Application's
	// repository for a diff (fleet.ReachRepo: on kind the workbench's Git
	// server is on the kind network, reached through a port-forward); stop
	// is called when the diff is done.
	ReachRepo func(ctx context.Context, repoURL string) (url string, stop func(), err error)
}

// Client works on the Applications of one cluster.
type Client struct {
	opts Options
	dyn  dynamic.Interface
	hub  bool
	// newDynamic and diff are the engine-facing parts, replaced in tests.
	newDynamic func(*rest.Config) (dynamic.Interface, error)
	diff       func(ctx context.Context, cfg *rest.Config, namespace string, app *v1alpha1.Application, prune bool) (string, []engine.ResourceDiff, error)
}

// New builds a Client.
func New(opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.InitiatedBy == "" {
		opts.InitiatedBy = "tether"
	}
	c := &Client{opts: opts, dyn: opts.Dynamic, newDynamic: func(cfg *rest.Config) (dynamic.Interface, error) { return dynamic.NewForConfig(cfg) }}
	c.diff = c.engineDiff
	if c.dyn == nil {
		if opts.Config == nil {
			return nil, errors.New("appops: no cluster config")
		}
		dyn, err := dynamic.NewForConfig(opts.Config)
		if err != nil {
			return nil, err
		}
		c.dyn = dyn
	}
	if opts.Workbench != nil && opts.Cluster != "" {
		rec, err := opts.Workbench.RecordedConfig()
		if err != nil {
			return nil, fmt.Errorf("read the workbench's record: %w", err)
		}
		c.hub = rec.Hub.Name == opts.Cluster
	}
	return c, nil
}

// ClusterOfContext names the workbench cluster a kubeconfig context
// reaches: the one whose tether-<cluster> context it is, or, for a cluster
// of the existing provider, the one named by it. It is "" for any other
// context and when the workbench has no record.
func ClusterOfContext(wb Workbench, kubeContext string) string {
	rec, err := wb.RecordedConfig()
	if err != nil || kubeContext == "" {
		return ""
	}
	for _, c := range rec.Clusters() {
		if c.Name != "" && (cluster.ContextName(c.Name) == kubeContext || c.Context == kubeContext) {
			return c.Name
		}
	}
	return ""
}

// Hub reports whether the client works on the workbench's hub, where the
// namespace of an Application names the spoke it runs on.
func (c *Client) Hub() bool { return c.hub }

func (c *Client) res(ns string) dynamic.ResourceInterface {
	return c.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns)
}

// where names a namespace for messages: on the hub, as the spoke it is.
func (c *Client) where(ns string) string {
	if c.hub {
		return fmt.Sprintf("namespace %s of the hub (spoke %s)", ns, ns)
	}
	return "namespace " + ns
}

// notFoundError says which Application is missing where, and still
// answers apierrors.IsNotFound, without repeating the API's own words.
type notFoundError struct {
	msg string
	err error
}

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return e.err }

func (c *Client) notFound(ns, name string, err error) error {
	return &notFoundError{msg: fmt.Sprintf("no Application %q in %s", name, c.where(ns)), err: err}
}

// List returns the Applications of namespace ns, or of every namespace
// when ns is "", sorted by namespace and name.
func (c *Client) List(ctx context.Context, ns string) ([]v1alpha1.Application, error) {
	list, err := c.res(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Applications: %w", err)
	}
	out := make([]v1alpha1.Application, 0, len(list.Items))
	for i := range list.Items {
		app, err := v1alpha1.ApplicationFrom(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *app)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Get returns one Application. A missing one is an error that
// apierrors.IsNotFound recognises.
func (c *Client) Get(ctx context.Context, ns, name string) (*v1alpha1.Application, error) {
	u, err := c.res(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, c.notFound(ns, name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read Application %s/%s: %w", ns, name, err)
	}
	return v1alpha1.ApplicationFrom(u)
}

// SyncRequest is a one-shot sync's parameters.
type SyncRequest struct {
	// Revision overrides the target revision for this sync.
	Revision string
	// Prune deletes resources that left Git.
	Prune bool
}

// Sync requests a one-shot sync and returns its operation ID, which
// WaitSync waits for. On the hub the principal carries it to the spoke.
func (c *Client) Sync(ctx context.Context, ns, name string, req SyncRequest) (string, error) {
	if _, err := c.Get(ctx, ns, name); err != nil {
		return "", err
	}
	id := NewOperationID()
	op := v1alpha1.Operation{ID: id, InitiatedBy: c.opts.InitiatedBy, Sync: &v1alpha1.SyncOperation{Revision: req.Revision, Prune: req.Prune}}
	patch, err := json.Marshal(map[string]any{"operation": op})
	if err != nil {
		return "", err
	}
	if _, err := c.res(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return "", fmt.Errorf("request a sync of %s/%s: %w", ns, name, err)
	}
	return id, nil
}

// WaitSync waits until the sync with operation ID id has finished and
// returns its outcome, Failed included (the caller decides what that
// means). It fails when ctx ends first; the request stays queued.
func (c *Client) WaitSync(ctx context.Context, ns, name, id string) (*v1alpha1.OperationState, error) {
	var st *v1alpha1.OperationState
	err := c.poll(ctx, ns, name, func(app *v1alpha1.Application) bool {
		if s := app.Status.OperationState; s != nil && s.Operation.ID == id && s.Phase != v1alpha1.OperationRunning {
			st = s
			return true
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("no result for the sync of %s/%s (operation %s): %w", ns, name, id, err)
	}
	return st, nil
}

// Refresh asks for a Git fetch and a compare of one Application now and
// returns the request's ID (the refresh annotation's value), which
// WaitRefresh waits for. On the hub the principal carries it to the spoke.
func (c *Client) Refresh(ctx context.Context, ns, name string) (string, error) {
	// The time says when it was asked; the random part keeps two requests
	// in one instant apart, since an answer is matched to its request by
	// this value.
	id := time.Now().UTC().Format(time.RFC3339Nano) + "-" + randomHex(3)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationRefresh: id}}})
	if err != nil {
		return "", err
	}
	if _, err := c.res(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return "", c.notFound(ns, name, err)
		}
		return "", fmt.Errorf("request a refresh of %s/%s: %w", ns, name, err)
	}
	return id, nil
}

// WaitRefresh waits until the refresh id has been carried out (its
// annotation is gone, or replaced by a newer request) and returns the
// Application as it is then: its status is the refresh's compare, at
// status.reconciledAt. It fails when ctx ends first; the request stays.
func (c *Client) WaitRefresh(ctx context.Context, ns, name, id string) (*v1alpha1.Application, error) {
	var out *v1alpha1.Application
	err := c.poll(ctx, ns, name, func(app *v1alpha1.Application) bool {
		if app.Annotations[v1alpha1.AnnotationRefresh] == id {
			return false
		}
		out = app
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("refresh of %s/%s not answered: %w", ns, name, err)
	}
	return out, nil
}

// poll reads the Application until done says so or ctx ends. Reads that
// fail are retried (an API server restarting must not end a wait), except
// for the Application's deletion.
func (c *Client) poll(ctx context.Context, ns, name string, done func(*v1alpha1.Application) bool) error {
	var last error
	for {
		u, err := c.res(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("the Application was deleted: %w", err)
		case err != nil:
			last = err
		default:
			app, err := v1alpha1.ApplicationFrom(u)
			if err != nil {
				return err
			}
			if done(app) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if last != nil && ctx.Err() != nil {
				return fmt.Errorf("%w (last read: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(c.opts.Poll):
		}
	}
}

// Diff is what a sync would change.
type Diff struct {
	// Revision is the commit the target revision resolved to.
	Revision string
	// Spoke is the spoke whose live objects were compared, for an
	// Application on the hub; "" when they are the client's cluster's.
	Spoke     string
	Resources []engine.ResourceDiff
}

// Diff fetches Git and reports what a sync of the Application would change,
// changing nothing. Pruning shows as the Application's policy says, or as
// asked with prune. An Application on the hub is compared with its spoke,
// through the spoke's copy (the one the spoke's engine syncs).
func (c *Client) Diff(ctx context.Context, ns, name string, prune bool) (*Diff, error) {
	cfg, dyn, appNS, spoke := c.opts.Config, c.dyn, ns, ""
	if c.hub {
		rec, err := c.opts.Workbench.RecordedConfig()
		if err != nil {
			return nil, fmt.Errorf("read the workbench's record: %w", err)
		}
		if !slices.ContainsFunc(rec.Spokes, func(s cluster.ClusterConfig) bool { return s.Name == ns }) {
			if _, err := c.Get(ctx, ns, name); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("the hub's Application %s/%s is for spoke %s, which the workbench does not have: its objects are on no cluster tether can read", ns, name, ns)
		}
		spoke, appNS = ns, cluster.SystemNamespace
		if cfg, err = c.opts.Workbench.RESTConfig(spoke); err != nil {
			return nil, err
		}
		if dyn, err = c.newDynamic(cfg); err != nil {
			return nil, err
		}
	}
	if cfg == nil {
		return nil, errors.New("appops: a diff needs the cluster's config")
	}
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(appNS).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && spoke != "" {
		if _, herr := c.Get(ctx, ns, name); herr != nil {
			return nil, herr
		}
		return nil, fmt.Errorf("no Application %s in %s on spoke %s yet: its agent has not created it (is the agent of %s connected?)", name, appNS, spoke, spoke)
	}
	if apierrors.IsNotFound(err) {
		return nil, c.notFound(ns, name, err)
	}
	if err != nil {
		return nil, err
	}
	app, err := v1alpha1.ApplicationFrom(u)
	if err != nil {
		return nil, err
	}
	if p := app.Spec.SyncPolicy; p != nil && p.Automated != nil && p.Automated.Prune {
		prune = true
	}
	sha, diffs, err := c.diff(ctx, cfg, appNS, app, prune)
	if err != nil {
		return nil, err
	}
	return &Diff{Revision: sha, Spoke: spoke, Resources: diffs}, nil
}

func (c *Client) engineDiff(ctx context.Context, cfg *rest.Config, namespace string, app *v1alpha1.Application, prune bool) (string, []engine.ResourceDiff, error) {
	cacheDir := c.opts.CacheDir
	if cacheDir == "" {
		var err error
		if cacheDir, err = cluster.DefaultCacheDir(); err != nil {
			return "", nil, err
		}
	}
	if c.opts.ReachRepo != nil {
		reach, stop, err := c.opts.ReachRepo(ctx, app.Spec.Source.RepoURL)
		if err != nil {
			return "", nil, fmt.Errorf("reach repository %s from this machine: %w", app.Spec.Source.RepoURL, err)
		}
		defer stop()
		app = app.DeepCopy()
		app.Spec.Source.RepoURL = reach
	}
	e, err := engine.New(engine.Options{Config: cfg, Namespace: namespace, CacheDir: filepath.Join(cacheDir, "diff"), Logger: c.opts.Logger})
	if err != nil {
		return "", nil, err
	}
	return e.Diff(ctx, app, prune)
}

// NewOperationID returns a new operation ID. It must be unique per
// request: the engine runs an operation once per ID, so a repeated ID
// would be taken for a redelivery and ignored.
func NewOperationID() string {
	return time.Now().UTC().Format("20060102T150405") + "-" + randomHex(8)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
