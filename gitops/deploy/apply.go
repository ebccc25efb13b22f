package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/tether-dev/tether/cluster/kubeapply"
)

// client resolves kinds to resources through discovery, so Apply and Delete
// take any object, including kinds whose CRD the same call installs.
type client struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
}

func newClient(cfg *rest.Config) (*client, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &client{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// resource finds obj's endpoint. A kind discovery has not seen may be a CRD
// established since the cache was filled, so one miss resets the cache.
func (c *client) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.dyn.Resource(m.Resource), nil
}

// rank orders kinds so that each object's dependencies exist before it:
// namespaces hold everything, CRDs define kinds, identities and secrets come
// before the workloads that use them. Unknown kinds go last, in input order.
func rank(obj *unstructured.Unstructured) int {
	order := []string{
		"Namespace", "CustomResourceDefinition", "ServiceAccount", "Secret", "ConfigMap",
		"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
		"Deployment", "StatefulSet", "DaemonSet",
	}
	if i := slices.Index(order, obj.GetKind()); i >= 0 {
		return i
	}
	return len(order)
}

func sorted(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	s := slices.Clone(objs)
	slices.SortStableFunc(s, func(a, b *unstructured.Unstructured) int { return rank(a) - rank(b) })
	return s
}

func describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", obj.GetKind(), ns, obj.GetName())
	}
	return fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
}

// Apply creates or updates objs with server-side apply, under fieldManager
// (FieldManager when empty) and with Force: these objects are tether's, and
// a field another manager changed is drift to take back, not a conflict to
// stop at. Namespaces the objects live in are created when missing, but not
// applied: tether does not claim a namespace it merely uses (`tether up`
// made tether-system, and may not own it on an existing cluster).
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, fieldManager string) error {
	if fieldManager == "" {
		fieldManager = FieldManager
	}
	c, err := newClient(cfg)
	if err != nil {
		return err
	}
	objs = sorted(objs)
	if err := c.ensureNamespaces(ctx, objs); err != nil {
		return err
	}
	for _, obj := range objs {
		r, err := c.resource(obj)
		if err != nil {
			return fmt.Errorf("apply %s: %w", describe(obj), err)
		}
		if err := kubeapply.Apply(ctx, r, obj, kubeapply.Options{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("apply %s: %w", describe(obj), err)
		}
	}
	return nil
}

// ensureNamespaces creates the namespaces objs live in that neither exist
// nor are among objs (those are applied first, like any other object).
func (c *client) ensureNamespaces(ctx context.Context, objs []*unstructured.Unstructured) error {
	declared := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" && o.GroupVersionKind().Group == "" {
			declared[o.GetName()] = true
		}
	}
	nss := c.dyn.Resource(corev1.SchemeGroupVersion.WithResource("namespaces"))
	for _, o := range objs {
		ns := o.GetNamespace()
		if ns == "" || declared[ns] {
			continue
		}
		declared[ns] = true
		if _, err := nss.Get(ctx, ns, metav1.GetOptions{}); err == nil {
			continue
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		if _, err := nss.Create(ctx, u, metav1.CreateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	return nil
}

// Delete removes objs, dependents first (the reverse of Apply's order), and
// lets the garbage collector take their pods in the background. Objects or
// kinds already gone count as deleted, so Delete can be retried and run
// against a half-installed cluster. It does not wait for the objects to
// disappear.
func Delete(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	c, err := newClient(cfg)
	if err != nil {
		return err
	}
	objs = sorted(objs)
	slices.Reverse(objs)
	var errs []error
	policy := metav1.DeletePropagationBackground
	for _, obj := range objs {
		r, err := c.resource(obj)
		if meta.IsNoMatchError(err) {
			continue // the CRD went first; so did its objects
		}
		if err == nil {
			err = r.Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", describe(obj), err))
		}
	}
	return errors.Join(errs...)
}
