package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/health"
	"github.com/tether-dev/tether/gitops/render"
	"github.com/tether-dev/tether/gitops/repo"
)

// target is one desired object, ready to apply.
type target struct {
	obj        *unstructured.Unstructured
	gvr        schema.GroupVersionResource
	namespaced bool
	// known is false when the kind is not served yet: a CRD in the same
	// commit defines it, and the object waits for the CRD.
	known bool
	live  *unstructured.Unstructured
	// file is where in Git the object comes from, for error messages.
	file string
}

func (t target) id() string {
	return fmt.Sprintf("%s/%s %s", t.obj.GetAPIVersion(), t.obj.GetKind(), nsName(t.obj.GetNamespace(), t.obj.GetName()))
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// plan is the comparison of Git with the cluster for one Application.
type plan struct {
	revision  string
	targets   []*target
	extras    []*unstructured.Unstructured // tracked by the app, gone from Git
	resources []v1alpha1.ResourceStatus
	outOfSync bool
	health    v1alpha1.HealthStatus
	// drift names the first difference found, for logs and messages.
	drift string
	// leasedUntil is when the first Lease keeping fields of a live object
	// (v1alpha1.AnnotationLeasedFields) runs out if not renewed: the
	// Application is looked at again then, so Git's values come back at
	// once when the borrower is gone.
	leasedUntil time.Time
}

// trackingID names an Application on live objects.
func trackingID(app *v1alpha1.Application) string { return app.Namespace + "/" + app.Name }

// makePlan renders the Application's source at revision and compares it
// with the live state.
func (e *Engine) makePlan(ctx context.Context, app *v1alpha1.Application, revision string, live liveLookup) (*plan, error) {
	objs, err := e.render(ctx, app, revision)
	if err != nil {
		return nil, err
	}
	p := &plan{revision: revision}
	id := trackingID(app)
	want := map[string]bool{}
	for _, o := range objs {
		t, err := e.targetFor(o.Object, app, id)
		if err != nil {
			return nil, err
		}
		t.file = o.File
		if t.known {
			if t.live, err = live.get(ctx, t.gvr, t.obj.GetNamespace(), t.obj.GetName()); err != nil {
				return nil, fmt.Errorf("read live %s: %w", t.id(), err)
			}
			if err := e.honorLease(ctx, t, p); err != nil {
				return nil, err
			}
		}
		want[t.gvr.String()+"|"+nsName(t.obj.GetNamespace(), t.obj.GetName())] = true
		p.targets = append(p.targets, t)
	}
	// Kinds to look for leftovers in: what Git has now and what the app
	// managed before (Git may have dropped a kind altogether).
	kinds := map[schema.GroupVersionResource]bool{}
	for _, t := range p.targets {
		if t.known {
			kinds[t.gvr] = true
		}
	}
	for _, r := range app.Status.Resources {
		gvk := schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
		if m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			kinds[m.Resource] = true
		}
	}
	for gvr := range kinds {
		tracked, err := live.list(ctx, gvr, id)
		if err != nil {
			return nil, fmt.Errorf("list live %s: %w", gvr.Resource, err)
		}
		for _, u := range tracked {
			if !want[gvr.String()+"|"+nsName(u.GetNamespace(), u.GetName())] {
				p.extras = append(p.extras, u)
			}
		}
	}
	sort.Slice(p.extras, func(i, j int) bool { return objectKey(p.extras[i]) < objectKey(p.extras[j]) })
	p.assess(app)
	return p, nil
}

func objectKey(u *unstructured.Unstructured) string {
	return u.GetAPIVersion() + "/" + u.GetKind() + "/" + nsName(u.GetNamespace(), u.GetName())
}

// targetFor completes a rendered object: destination namespace for
// namespaced kinds, and the tracking label and annotation.
func (e *Engine) targetFor(o *unstructured.Unstructured, app *v1alpha1.Application, id string) (*target, error) {
	obj := o.DeepCopy()
	gvk := obj.GroupVersionKind()
	t := &target{obj: obj}
	m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		e.mapper.Reset() // a CRD may have appeared since discovery was cached
		m, err = e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	switch {
	case err == nil:
		t.known = true
		t.gvr = m.Resource
		t.namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
	case meta.IsNoMatchError(err):
		// Served by a CRD of this sync (checked at sync time). Guess the
		// usual resource name so status can name it meanwhile.
		t.namespaced = true
		t.gvr = schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: guessResource(gvk.Kind)}
	default:
		return nil, fmt.Errorf("look up kind %s: %w", gvk.String(), err)
	}
	if t.namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace(app.Spec.Destination.Namespace)
	}
	if !t.namespaced {
		obj.SetNamespace("")
	}
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelManaged] = "true"
	obj.SetLabels(labels)
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha1.AnnotationTrackingID] = id
	obj.SetAnnotations(ann)
	return t, nil
}

func guessResource(kind string) string {
	b := []byte(kind)
	for i := range b {
		if b[i] >= 'A' && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b) + "s"
}

// assess fills per-resource sync and health and the Application's totals.
func (p *plan) assess(app *v1alpha1.Application) {
	worst := health.Healthy
	var worstMsg string
	for _, t := range p.targets {
		gvk := t.obj.GroupVersionKind()
		rs := v1alpha1.ResourceStatus{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: t.obj.GetNamespace(), Name: t.obj.GetName(), Status: v1alpha1.SyncStatusSynced}
		if ok, path := inSync(t.obj, t.live); !ok {
			rs.Status = v1alpha1.SyncStatusOutOfSync
			p.outOfSync = true
			if p.drift == "" {
				p.drift = t.id() + ": " + path
			}
		}
		var h health.Status
		if t.live == nil {
			h = health.Status{Code: health.Missing, Message: "not in the cluster"}
		} else {
			h = health.Assess(t.live)
		}
		rs.Health = &v1alpha1.HealthStatus{Status: string(h.Code), Message: h.Message}
		if health.Worst(worst, h.Code) != worst {
			worst, worstMsg = h.Code, fmt.Sprintf("%s %s: %s", gvk.Kind, t.obj.GetName(), h.Message)
		}
		p.resources = append(p.resources, rs)
	}
	for _, u := range p.extras {
		gvk := u.GroupVersionKind()
		p.resources = append(p.resources, v1alpha1.ResourceStatus{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName(), Status: v1alpha1.SyncStatusOutOfSync, RequiresPruning: true})
		p.outOfSync = true
		if p.drift == "" {
			p.drift = objectKey(u) + ": not in Git"
		}
	}
	p.health = v1alpha1.HealthStatus{Status: string(worst), Message: worstMsg}
}

// render returns the objects of the Application's source at revision,
// cached by commit, path and options: the same commit renders the same.
func (e *Engine) render(ctx context.Context, app *v1alpha1.Application, revision string) ([]render.Object, error) {
	src := app.Spec.Source
	opts := render.Options{}
	if k := src.Kustomize; k != nil {
		opts.Kustomize = &render.KustomizeOptions{NamePrefix: k.NamePrefix, NameSuffix: k.NameSuffix, CommonLabels: k.CommonLabels, Images: k.Images}
	}
	optsJSON, _ := json.Marshal(opts)
	sum := sha256.Sum256([]byte(src.RepoURL + "\x00" + revision + "\x00" + src.Path + "\x00" + string(optsJSON)))
	key := hex.EncodeToString(sum[:])
	if objs, ok := e.renders.get(key); ok {
		return objs, nil
	}
	dir, err := e.repos.Checkout(ctx, src.RepoURL, revision)
	if err != nil {
		return nil, err
	}
	objs, err := render.RenderObjects(dir, src.Path, opts)
	if err != nil {
		return nil, fmt.Errorf("render %s at %s: %w", pathOrRoot(src.Path), repo.ShortSHA(revision), err)
	}
	e.renders.put(key, objs)
	return objs, nil
}

func pathOrRoot(p string) string {
	if p == "" {
		return "the repository root"
	}
	return p
}

// renderCache is a small LRU of rendered object sets. Callers deep-copy
// before changing an object (targetFor does).
type renderCache struct {
	mu    sync.Mutex
	max   int
	order []string
	items map[string][]render.Object
}

func newRenderCache(max int) *renderCache {
	return &renderCache{max: max, items: map[string][]render.Object{}}
}

func (c *renderCache) get(k string) ([]render.Object, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.items[k]
	return v, ok
}

func (c *renderCache) put(k string, v []render.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; !ok {
		c.order = append(c.order, k)
	}
	c.items[k] = v
	for len(c.order) > c.max {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
}

// syncWave reads the wave annotation; invalid values count as 0.
func syncWave(u *unstructured.Unstructured) int {
	n, err := strconv.Atoi(u.GetAnnotations()[v1alpha1.AnnotationSyncWave])
	if err != nil {
		return 0
	}
	return n
}

func equalField(a, b *unstructured.Unstructured, field string) bool {
	return reflect.DeepEqual(a.Object[field], b.Object[field])
}

func equalMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
