package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/repo"
)

// FieldManager is the server-side apply field manager of every sync.
const FieldManager = "tether"

// Options configure an Engine.
type Options struct {
	Config *rest.Config
	// Namespace holds the Applications this engine serves.
	Namespace string
	// CacheDir holds Git copies and checked-out trees.
	CacheDir string
	Logger   *slog.Logger
	// PollInterval is how often Git is fetched without a refresh trigger;
	// each Application gets up to 10% jitter so fetches spread out.
	PollInterval time.Duration
	// Workers reconcile Applications in parallel (one Application is never
	// reconciled twice at once: the work queue guarantees it).
	Workers int
}

// Engine reconciles Applications.
type Engine struct {
	opts   Options
	log    *slog.Logger
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
	repos  *repo.Cache
	queue  workqueue.TypedRateLimitingInterface[string]

	apps    dynamicinformer.DynamicSharedInformerFactory
	appInf  cache.SharedIndexInformer
	managed dynamicinformer.DynamicSharedInformerFactory

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	lastFetch map[string]time.Time // app key → last Git fetch
	forced    map[string]bool      // app key → fetch on next reconcile
	renders   *renderCache
	ctx       context.Context
}

// New builds an Engine; Run starts it.
func New(opts Options) (*Engine, error) {
	if opts.Config == nil {
		return nil, errors.New("engine: no cluster config")
	}
	if opts.Namespace == "" {
		return nil, errors.New("engine: no namespace for Applications")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 3 * time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// client-go's default of 5 requests per second would make a sync of a
	// few hundred resources take minutes (dry run, apply, read back).
	opts.Config = rest.CopyConfig(opts.Config)
	if opts.Config.QPS == 0 {
		opts.Config.QPS, opts.Config.Burst = 100, 200
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(opts.Config)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		opts:      opts,
		log:       opts.Logger,
		dyn:       dyn,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		repos:     repo.NewCache(filepath.Join(opts.CacheDir, "git")),
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 2*time.Minute)),
		informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{},
		lastFetch: map[string]time.Time{},
		forced:    map[string]bool{},
		renders:   newRenderCache(64),
	}
	e.apps = dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, opts.Namespace, nil)
	e.managed = dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, "", func(o *metav1.ListOptions) {
		o.LabelSelector = v1alpha1.LabelManaged + "=true"
	})
	// The Application informer exists from the start so Refresh can be
	// called (e.g. by a Git push hook) before or while Run starts.
	e.appInf = e.apps.ForResource(v1alpha1.ApplicationsResource).Informer()
	_, err = e.appInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { e.enqueueApp(obj) },
		UpdateFunc: func(oldObj, newObj any) {
			// A status write of our own must not wake the Application
			// again; spec, operation, labels and annotations do.
			o, n := oldObj.(*unstructured.Unstructured), newObj.(*unstructured.Unstructured)
			if o.GetGeneration() == n.GetGeneration() && equalField(o, n, "operation") &&
				equalMap(o.GetAnnotations(), n.GetAnnotations()) && equalMap(o.GetLabels(), n.GetLabels()) {
				return
			}
			e.enqueueApp(newObj)
		},
		DeleteFunc: func(obj any) { e.enqueueApp(obj) },
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Run reconciles until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	defer e.queue.ShutDown()
	e.apps.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), e.appInf.HasSynced) {
		return fmt.Errorf("Application informer did not sync: is the Application CRD installed? (%w)", ctx.Err())
	}
	var wg sync.WaitGroup
	for range e.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	e.queue.ShutDown()
	wg.Wait()
	e.managed.Shutdown()
	e.apps.Shutdown()
	return nil
}

// Refresh asks every Application whose source is repoURL to fetch Git and
// reconcile now (a push arrived). It is never coalesced away: the flag stays
// set until a reconcile has fetched.
func (e *Engine) Refresh(repoURL string) int {
	return e.refresh(func(url string) bool { return url == repoURL })
}

// RefreshAll forces a fetch for every Application, whatever its repository:
// for when push notifications may have been missed (an agent that was
// disconnected from the principal, which relays them).
func (e *Engine) RefreshAll() int {
	return e.refresh(func(string) bool { return true })
}

func (e *Engine) refresh(match func(repoURL string) bool) int {
	if e.appInf == nil {
		return 0
	}
	n := 0
	for _, obj := range e.appInf.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		url, _, _ := unstructured.NestedString(u.Object, "spec", "source", "repoURL")
		if !match(url) {
			continue
		}
		key := u.GetNamespace() + "/" + u.GetName()
		e.mu.Lock()
		e.forced[key] = true
		e.mu.Unlock()
		e.queue.Add(key)
		n++
	}
	return n
}

func (e *Engine) enqueueApp(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		e.queue.Add(key)
	}
}

func (e *Engine) processNext(ctx context.Context) bool {
	key, quit := e.queue.Get()
	if quit {
		return false
	}
	defer e.queue.Done(key)
	requeue, err := e.reconcile(ctx, key)
	switch {
	case err != nil:
		e.log.Info("reconcile failed; retrying with backoff", "app", key, "err", err)
		e.queue.AddRateLimited(key)
	default:
		e.queue.Forget(key)
		if requeue > 0 {
			e.queue.AddAfter(key, requeue)
		}
	}
	return true
}

// pollDelay is the next poll with up to 10% jitter, so many Applications
// on one repository do not fetch in lock step.
func (e *Engine) pollDelay() time.Duration {
	p := e.opts.PollInterval
	return p + time.Duration(rand.Int64N(int64(p)/10+1))
}

// informerFor returns a synced informer for a managed kind, starting it on
// first use. Every event on a managed object wakes the Application named by
// its tracking annotation, which is how drift reaches self-heal.
func (e *Engine) informerFor(ctx context.Context, gvr schema.GroupVersionResource) (cache.SharedIndexInformer, error) {
	e.mu.Lock()
	inf, ok := e.informers[gvr]
	if !ok {
		inf = e.managed.ForResource(gvr).Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    e.enqueueOwner,
			UpdateFunc: func(_, n any) { e.enqueueOwner(n) },
			DeleteFunc: e.enqueueOwner,
		})
		e.informers[gvr] = inf
		runCtx := e.ctx
		if runCtx == nil {
			runCtx = ctx
		}
		e.managed.Start(runCtx.Done())
	}
	e.mu.Unlock()
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("watch %s did not sync", gvr.String())
	}
	return inf, nil
}

func (e *Engine) enqueueOwner(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	id := u.GetAnnotations()[v1alpha1.AnnotationTrackingID]
	if id == "" {
		return
	}
	e.queue.Add(id)
}

// liveLookup finds live objects: from informers in the controller, from
// GETs in one-shot commands such as diff.
type liveLookup interface {
	get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error)
	list(ctx context.Context, gvr schema.GroupVersionResource, trackingID string) ([]*unstructured.Unstructured, error)
}

type informerLookup struct{ e *Engine }

func (l informerLookup) get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	inf, err := l.e.informerFor(ctx, gvr)
	if err != nil {
		return nil, err
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, exists, err := inf.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, err
	}
	return obj.(*unstructured.Unstructured), nil
}

func (l informerLookup) list(ctx context.Context, gvr schema.GroupVersionResource, trackingID string) ([]*unstructured.Unstructured, error) {
	inf, err := l.e.informerFor(ctx, gvr)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, obj := range inf.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		if u.GetAnnotations()[v1alpha1.AnnotationTrackingID] == trackingID {
			out = append(out, u)
		}
	}
	return out, nil
}

type apiLookup struct{ dyn dynamic.Interface }

func (l apiLookup) get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	obj, err := l.dyn.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return obj, err
}

func (l apiLookup) list(ctx context.Context, gvr schema.GroupVersionResource, trackingID string) ([]*unstructured.Unstructured, error) {
	list, err := l.dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManaged + "=true"})
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for i := range list.Items {
		if list.Items[i].GetAnnotations()[v1alpha1.AnnotationTrackingID] == trackingID {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}
