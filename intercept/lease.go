package intercept

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
)

// createLease creates the intercept's Lease, which carries its Record:
// the agent reads its routes from it. With auto, a name already taken
// (a second personal intercept of the same port) gets a -2, -3… suffix.
func (i *Intercept) createLease(ctx context.Context, auto bool) error {
	c, base := i.opts.Client, i.rec.Name
	dur := int32(record.DefaultLeaseSeconds)
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = base + "-" + strconv.Itoa(n)
		}
		i.rec.Name, i.rec.Lease = name, record.LeaseName(name)
		b, err := json.Marshal(i.rec)
		if err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: i.rec.Lease, Namespace: i.rec.Namespace,
				Labels:      record.Labels(name, i.rec.Service),
				Annotations: map[string]string{record.Annotation: string(b)},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &i.rec.Holder, LeaseDurationSeconds: &dur, AcquireTime: &now, RenewTime: &now},
		}
		_, err = c.CoordinationV1().Leases(i.rec.Namespace).Create(ctx, lease, metav1.CreateOptions{})
		switch {
		case err == nil:
			return nil
		case apierrors.IsAlreadyExists(err) && auto && n < 20:
			continue
		case apierrors.IsAlreadyExists(err):
			return &ConflictError{Names: []string{name}, Err: &FieldError{Field: "Name", Before: fmt.Sprintf("an intercept named %q already exists in %s/%s: choose another ", name, i.rec.Cluster, i.rec.Namespace)}}
		default:
			return fmt.Errorf("create lease %s/%s: %w", i.rec.Namespace, i.rec.Lease, err)
		}
	}
}

// recheck repeats the conflict check with this intercept's Lease in
// place: two starts racing past the first check both see each other here
// and both give up, rather than both routing the same port.
func (i *Intercept) recheck(ctx context.Context, target string, spec Spec) error {
	live, err := serviceIntercepts(ctx, i.opts.Client, i.rec.Namespace, i.rec.Service, i.log)
	if err != nil {
		return err
	}
	live = slices.DeleteFunc(live, func(r record.Record) bool { return r.Name == i.rec.Name })
	return conflict(target, live, spec)
}

// renewUntil renews Lease name until ctx ends.
func (i *Intercept) renewUntil(ctx context.Context, name string) {
	t := time.NewTicker(i.opts.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := renewLease(ctx, i.opts.Client, i.rec.Namespace, name); err != nil && ctx.Err() == nil {
			i.log.Warn("renew traffic-agent lease", "lease", name, "err", err)
		}
	}
}

// renewLease sets the Lease's renewTime with a merge patch: one request,
// and it never conflicts with the agent writing the same Lease.
func renewLease(ctx context.Context, c kubernetes.Interface, namespace, name string) error {
	b, err := json.Marshal(map[string]any{"spec": map[string]any{"renewTime": metav1.NewMicroTime(time.Now())}})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = c.CoordinationV1().Leases(namespace).Patch(rctx, name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: "tether-intercept"})
	return err
}

func (i *Intercept) renew(ctx context.Context) {
	t := time.NewTicker(i.opts.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := renewLease(ctx, i.opts.Client, i.rec.Namespace, i.rec.Lease)
		if apierrors.IsNotFound(err) {
			i.fail(ErrStopped)
			return
		}
		if err != nil && ctx.Err() == nil {
			i.log.Warn("renew lease", "err", err)
		}
	}
}
