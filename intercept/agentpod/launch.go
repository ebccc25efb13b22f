package agentpod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster/kubeapply"
	"github.com/tether-dev/tether/intercept/record"
)

// Launcher starts traffic-agents as pods; its Launch method is an
// intercept.AgentLauncher.
type Launcher struct {
	Client  kubernetes.Interface
	Options Options
	Logger  *slog.Logger
}

// Launch applies rec's agent objects, owned by the agent's Lease (the
// intercept's for records that name no agent), and returns a
// function that deletes them. It has the shape of intercept.AgentLauncher.
func (l *Launcher) Launch(ctx context.Context, rec *record.Record, token string) (kill func(), err error) {
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set, err := Objects(rec, token, l.Options)
	if err != nil {
		return nil, err
	}
	owner := ownerLease(rec)
	lease, err := l.Client.CoordinationV1().Leases(rec.Namespace).Get(ctx, owner, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("intercept %s: lease %s/%s is gone: the intercept was stopped while starting (start it again)", rec.Name, rec.Namespace, owner)
	}
	if err != nil {
		return nil, fmt.Errorf("intercept %s: read lease %s/%s: %w", rec.Name, rec.Namespace, owner, err)
	}
	set.SetOwner(LeaseOwner(lease))
	kill = func() {
		// Detached: kill runs while a failed start unwinds, often because
		// ctx was cancelled.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if err := Delete(dctx, l.Client, set); err != nil {
			log.Warn("remove traffic-agent objects", "intercept", rec.Name, "err", err)
		}
	}
	if err := Apply(ctx, l.Client, set, false); err != nil {
		kill()
		return nil, err
	}
	log.Info("traffic-agent pod applied", "intercept", rec.Name, "pod", rec.Namespace+"/"+set.Pod.Name, "image", l.Options.Image)
	return kill, nil
}

// Apply creates or updates the objects of set with server-side apply, in
// List order, under FieldManager with Force (they are tether's: a field
// someone else changed is drift to take back). dryRun asks the API server
// to run admission and validation without persisting anything.
func Apply(ctx context.Context, c kubernetes.Interface, set *Set, dryRun bool) error {
	opts := kubeapply.Options{FieldManager: FieldManager, Force: true, DryRun: dryRun}
	for _, obj := range set.List() {
		if err := applyOne(ctx, c, obj, opts); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(ctx context.Context, c kubernetes.Interface, obj runtime.Object, opts kubeapply.Options) error {
	body, err := kubeapply.FromTyped(obj)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	name, ns := body.GetName(), body.GetNamespace()
	switch obj.(type) {
	case *corev1.ServiceAccount:
		err = kubeapply.Apply(ctx, c.CoreV1().ServiceAccounts(ns), body, opts)
	case *rbacv1.Role:
		err = kubeapply.Apply(ctx, c.RbacV1().Roles(ns), body, opts)
	case *rbacv1.RoleBinding:
		err = kubeapply.Apply(ctx, c.RbacV1().RoleBindings(ns), body, opts)
	case *corev1.Secret:
		err = kubeapply.Apply(ctx, c.CoreV1().Secrets(ns), body, opts)
	case *corev1.Pod:
		err = kubeapply.Apply(ctx, c.CoreV1().Pods(ns), body, opts)
	default:
		return fmt.Errorf("apply: unexpected object %T", obj)
	}
	if err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", obj.GetObjectKind().GroupVersionKind().Kind, ns, name, err)
	}
	return nil
}

// Delete removes the objects of set, the pod first (immediately: the agent
// has nothing to drain when its start is being rolled back). Objects
// already gone count as deleted.
func Delete(ctx context.Context, c kubernetes.Interface, set *Set) error {
	ignore := func(err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	ns := set.Pod.Namespace
	errs := []error{
		ignore(c.CoreV1().Pods(ns).Delete(ctx, set.Pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})),
		ignore(c.CoreV1().Secrets(ns).Delete(ctx, set.Secret.Name, metav1.DeleteOptions{})),
		ignore(c.RbacV1().RoleBindings(ns).Delete(ctx, set.RoleBinding.Name, metav1.DeleteOptions{})),
		ignore(c.RbacV1().Roles(ns).Delete(ctx, set.Role.Name, metav1.DeleteOptions{})),
		ignore(c.CoreV1().ServiceAccounts(ns).Delete(ctx, set.ServiceAccount.Name, metav1.DeleteOptions{})),
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete traffic-agent objects %s/%s: %w", ns, set.Pod.Name, err)
	}
	return nil
}
