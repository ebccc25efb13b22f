package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tether-dev/tether/cluster/kubeapply"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// kindRank orders kinds within a wave so that what others depend on goes
// first (the order Argo CD and Helm use, shortened).
func kindRank(kind string) int {
	order := []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "Secret", "ConfigMap", "PersistentVolume",
		"PersistentVolumeClaim", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service"}
	for i, k := range order {
		if k == kind {
			return i
		}
	}
	return len(order)
}

// foundational objects are applied before anything is dry-run that
// depends on them.
func foundational(t *target) bool {
	k := t.obj.GetKind()
	g := t.obj.GroupVersionKind().Group
	return (k == "Namespace" && g == "") || (k == "CustomResourceDefinition" && g == "apiextensions.k8s.io")
}

// sync applies the plan. It dry-runs every object the cluster can check
// already; if any is refused, nothing is applied. Then it applies
// Namespaces and CRDs, dry-runs what depended on them, and applies the rest
// wave by wave. Prune, when asked, deletes what left Git last.
func (e *Engine) sync(ctx context.Context, app *v1alpha1.Application, p *plan, prune bool) error {
	targets := append([]*target(nil), p.targets...)
	sort.SliceStable(targets, func(i, j int) bool {
		a, b := targets[i], targets[j]
		fa, fb := foundational(a), foundational(b)
		if fa != fb {
			return fa
		}
		if wa, wb := syncWave(a.obj), syncWave(b.obj); wa != wb {
			return wa < wb
		}
		if ra, rb := kindRank(a.obj.GetKind()), kindRank(b.obj.GetKind()); ra != rb {
			return ra < rb
		}
		return a.id() < b.id()
	})

	newNamespaces := map[string]bool{}
	if hasOption(app, v1alpha1.SyncOptionCreateNamespace) {
		newNamespaces[app.Spec.Destination.Namespace] = true
	}
	for _, t := range targets {
		if t.obj.GetKind() == "Namespace" && t.live == nil {
			newNamespaces[t.obj.GetName()] = true
		}
	}
	// Dry run of everything checkable now.
	var deferred []*target
	var errs []error
	for _, t := range targets {
		if foundational(t) && t.live == nil && t.obj.GetKind() == "Namespace" {
			continue // creating a namespace cannot be refused for its content
		}
		if !t.known || (t.namespaced && newNamespaces[t.obj.GetNamespace()] && !e.namespaceExists(ctx, t.obj.GetNamespace())) {
			deferred = append(deferred, t)
			continue
		}
		if err := e.apply(ctx, t, true); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("dry run refused %d of %d resources, nothing was applied: %w", len(errs), len(targets), errors.Join(errs...))
	}

	if hasOption(app, v1alpha1.SyncOptionCreateNamespace) && !e.namespaceExists(ctx, app.Spec.Destination.Namespace) {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": app.Spec.Destination.Namespace}}}
		if err := kubeapply.Apply(ctx, e.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}), ns, applyOptions(false)); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns.GetName(), err)
		}
	}
	var crds []string
	for _, t := range targets {
		if !foundational(t) {
			continue
		}
		if err := e.apply(ctx, t, false); err != nil {
			return err
		}
		if t.obj.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, t.obj.GetName())
		}
	}
	if err := e.waitEstablished(ctx, crds); err != nil {
		return err
	}
	if len(deferred) > 0 {
		e.mapper.Reset()
		for _, t := range deferred {
			if !t.known {
				m, err := e.mapper.RESTMapping(t.obj.GroupVersionKind().GroupKind(), t.obj.GroupVersionKind().Version)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: kind %s is not served by the cluster and no CRD in Git defines it", t.id(), t.obj.GroupVersionKind().Kind))
					continue
				}
				t.known, t.gvr = true, m.Resource
				t.namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
				if !t.namespaced {
					t.obj.SetNamespace("")
				}
			}
			if err := e.apply(ctx, t, true); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("dry run refused %d resources after their namespaces and CRDs were created, nothing else was applied: %w", len(errs), errors.Join(errs...))
		}
	}
	for _, t := range targets {
		if foundational(t) {
			continue
		}
		if err := e.apply(ctx, t, false); err != nil {
			return err
		}
	}
	if prune {
		for i := len(p.extras) - 1; i >= 0; i-- {
			u := p.extras[i]
			if u.GetAnnotations()[v1alpha1.AnnotationTrackingID] != trackingID(app) {
				continue // never delete what another Application manages
			}
			gvk := u.GroupVersionKind()
			m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return fmt.Errorf("prune %s: %w", objectKey(u), err)
			}
			policy := metav1.DeletePropagationBackground
			err = e.dyn.Resource(m.Resource).Namespace(u.GetNamespace()).Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: ptrUID(u.GetUID())}})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("prune %s: %w", objectKey(u), err)
			}
			e.log.Info("pruned", "app", trackingID(app), "object", objectKey(u))
		}
	}
	return nil
}

func ptrUID(u types.UID) *types.UID { return &u }

// applyOptions are the engine's: Force takes ownership of fields another
// manager set, because Git is the source of truth.
func applyOptions(dryRun bool) kubeapply.Options {
	return kubeapply.Options{FieldManager: FieldManager, Force: true, DryRun: dryRun}
}

// apply server-side applies one object (or dry-runs it).
func (e *Engine) apply(ctx context.Context, t *target, dryRun bool) error {
	obj := t.obj.DeepCopy()
	obj.SetResourceVersion("")
	var err error
	if t.namespaced {
		err = kubeapply.Apply(ctx, e.dyn.Resource(t.gvr).Namespace(obj.GetNamespace()), obj, applyOptions(dryRun))
	} else {
		err = kubeapply.Apply(ctx, e.dyn.Resource(t.gvr), obj, applyOptions(dryRun))
	}
	if err != nil {
		if t.file != "" {
			return fmt.Errorf("%s (%s): %s", t.id(), t.file, apiMessage(err))
		}
		return fmt.Errorf("%s: %s", t.id(), apiMessage(err))
	}
	return nil
}

func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}

func (e *Engine) namespaceExists(ctx context.Context, name string) bool {
	_, err := e.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, name, metav1.GetOptions{})
	return err == nil
}

func (e *Engine) waitEstablished(ctx context.Context, names []string) error {
	for _, n := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			u, err := e.dyn.Resource(crdResource()).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s did not become established: %w", n, err)
		}
	}
	return nil
}

func hasOption(app *v1alpha1.Application, opt string) bool {
	if app.Spec.SyncPolicy == nil {
		return false
	}
	for _, o := range app.Spec.SyncPolicy.SyncOptions {
		if strings.EqualFold(o, opt) {
			return true
		}
	}
	return false
}
