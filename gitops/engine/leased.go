package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

var leasesResource = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// defaultLeaseDuration is what a Lease without leaseDurationSeconds is
// given, as client-go's leader election and tether's intercepts assume.
const defaultLeaseDuration = 10 * time.Second

// honorLease makes t's desired object take the fields another controller
// holds on the live object under a live Lease (AnnotationLeasedFields),
// so compare and apply leave them as they are; a lapsed or missing Lease
// holds nothing, and Git's values come back. A malformed annotation
// holds nothing either: Git wins, and the log says why.
func (e *Engine) honorLease(ctx context.Context, t *target, p *plan) error {
	if t.live == nil {
		return nil
	}
	lf, err := v1alpha1.ParseLeasedFields(t.live.GetAnnotations())
	if err != nil {
		e.log.Warn("ignoring leased fields", "object", t.id(), "err", err)
		return nil
	}
	if lf == nil {
		return nil
	}
	until, err := e.leaseExpiry(ctx, t.live.GetNamespace(), lf.Lease)
	if err != nil {
		return fmt.Errorf("read Lease %s that %s names in %s: %w", nsName(t.live.GetNamespace(), lf.Lease), t.id(), v1alpha1.AnnotationLeasedFields, err)
	}
	if !until.After(time.Now()) {
		e.log.Debug("leased fields back to Git: lease lapsed", "object", t.id(), "lease", lf.Lease)
		return nil
	}
	for _, f := range lf.Fields {
		path := strings.Split(f, ".")
		v, found, err := unstructured.NestedFieldNoCopy(t.live.Object, path...)
		if err != nil {
			continue
		}
		if !found {
			unstructured.RemoveNestedField(t.obj.Object, path...)
			continue
		}
		if err := unstructured.SetNestedField(t.obj.Object, runtime.DeepCopyJSONValue(v), path...); err != nil {
			return fmt.Errorf("keep leased field %s of %s: %w", f, t.id(), err)
		}
	}
	e.log.Debug("leaving leased fields as they are", "object", t.id(), "lease", lf.Lease, "fields", lf.Fields, "until", until)
	if p.leasedUntil.IsZero() || until.Before(p.leasedUntil) {
		p.leasedUntil = until
	}
	return nil
}

// leaseExpiry is when Lease namespace/name runs out unless renewed; the
// zero time when it does not exist or was never renewed.
func (e *Engine) leaseExpiry(ctx context.Context, namespace, name string) (time.Time, error) {
	u, err := e.dyn.Resource(leasesResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var l coordinationv1.Lease
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &l); err != nil {
		return time.Time{}, err
	}
	return leaseExpiry(&l), nil
}

func leaseExpiry(l *coordinationv1.Lease) time.Time {
	renewed := l.Spec.RenewTime
	if renewed == nil {
		renewed = l.Spec.AcquireTime
	}
	if renewed == nil {
		return time.Time{}
	}
	d := defaultLeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return renewed.Add(d)
}
