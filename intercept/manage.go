package intercept

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
)

// TokenEnv carries the session token to an agent process: an environment
// variable, not a flag, so it does not show in ps.
const TokenEnv = "TETHER_INTERCEPT_TOKEN"

// ExecAgent returns a launcher that runs argv (the tether binary and the
// arguments that reach `intercept agent`, with its kubeconfig) plus
// --record, in its own session so it outlives the workbench: it must,
// to fail open after the workbench is killed. Its output goes to logPath.
func ExecAgent(argv []string, logPath string) AgentLauncher {
	return func(ctx context.Context, rec *record.Record, token string) (func(), error) {
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		defer log.Close()
		cmd := exec.Command(argv[0], append(argv[1:], "--record", string(b))...)
		cmd.Env = append(os.Environ(), TokenEnv+"="+token)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		return func() {
			_ = cmd.Process.Kill()
			<-done
		}, nil
	}
}

// Status is one intercept as found in a cluster.
type Status struct {
	record.Record
	// Alive: its Lease was renewed within its duration.
	Alive bool
	// Connections carried to the workbench and, for a personal intercept,
	// HTTP requests matched, as the Service's traffic-agent last wrote
	// them (every ~2 s, on its Lease).
	Connections int64
	Requests    int64
}

// List returns the intercepts of a cluster, read from their Leases, with
// the counters their traffic-agents report.
func List(ctx context.Context, c kubernetes.Interface) ([]Status, error) {
	leases := c.CoordinationV1().Leases("")
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: record.InterceptSelector})
	if err != nil {
		return nil, fmt.Errorf("list intercept leases: %w", err)
	}
	agents, err := leases.List(ctx, metav1.ListOptions{LabelSelector: record.AgentSelector})
	if err != nil {
		return nil, fmt.Errorf("list traffic-agent leases: %w", err)
	}
	type agent struct {
		id     string
		counts map[string]record.Counters
	}
	byService := map[string]agent{}
	for _, l := range agents.Items {
		byService[l.Namespace+"/"+l.Labels[record.LabelService]] = agent{l.Annotations[record.AnnotationAgentID], record.CountersFromLease(&l)}
	}
	now := time.Now()
	var out []Status
	for _, l := range list.Items {
		rec, err := record.FromLease(&l)
		if err != nil {
			continue // not readable as an intercept: uninstall removes it
		}
		st := Status{Record: *rec, Alive: record.LeaseAlive(&l, now)}
		if a, ok := byService[rec.Namespace+"/"+rec.Service]; ok {
			st.AgentID = a.id
			st.Connections, st.Requests = a.counts[rec.Name].Connections, a.counts[rec.Name].Requests
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Namespace < out[j].Namespace
	})
	return out, nil
}

// ErrNotFound: no intercept of that name in the cluster.
var ErrNotFound = errors.New("no such intercept")

// StopByName ends intercept name from any process: its Lease is deleted
// (the workbench holding it sees that and exits, the agent drops its
// routes); if it was the Service's last intercept, the Service is
// restored and the agent removed.
func StopByName(ctx context.Context, c kubernetes.Interface, name string) error {
	list, err := List(ctx, c)
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.Name == name {
			_, err := removeIntercept(ctx, c, &s.Record, slog.New(slog.DiscardHandler))
			return err
		}
	}
	return fmt.Errorf("intercept %q: %w", name, ErrNotFound)
}

// removeIntercept deletes rec's Lease and, when no live intercept of the
// Service remains (last), restores the Service and removes the agent
// instance serving it. The agent would do the same within a second; doing
// it here makes `stop` return with the Service already as it was.
func removeIntercept(ctx context.Context, c kubernetes.Interface, rec *record.Record, log *slog.Logger) (last bool, err error) {
	if err := record.Cleanup(ctx, c, rec); err != nil {
		return false, err
	}
	live, err := serviceIntercepts(ctx, c, rec.Namespace, rec.Service, log)
	if err != nil {
		return false, err
	}
	if len(live) > 0 {
		return false, nil
	}
	return true, cleanupServiceAgent(ctx, c, rec)
}

// cleanupServiceAgent restores rec's Service and removes its agent.
func cleanupServiceAgent(ctx context.Context, c kubernetes.Interface, rec *record.Record) error {
	// Only the instance seen now: one installed after this read (by a
	// start racing this stop) is not ours to remove.
	id := ""
	l, err := c.CoordinationV1().Leases(rec.Namespace).Get(ctx, record.AgentName(rec.Service), metav1.GetOptions{})
	switch {
	case err == nil:
		id = l.Annotations[record.AnnotationAgentID]
	case !apierrors.IsNotFound(err):
		return err
	default:
		svc, err := c.CoreV1().Services(rec.Namespace).Get(ctx, rec.Service, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		tk, err := record.TakeoverFromService(svc)
		if err != nil || tk == nil {
			return err
		}
		id = tk.AgentID
	}
	return record.CleanupAgent(ctx, c, rec.Namespace, rec.Service, id)
}

// Sweep cleans up what dead intercepts and agents left behind: intercept
// Leases no longer renewed, agents whose own Lease expired (killed with
// their workbenches), Services taken over by no live agent, and agent
// Pods and Secrets without a Lease. It returns what it cleaned.
func Sweep(ctx context.Context, c kubernetes.Interface) ([]string, error) {
	leases := c.CoordinationV1().Leases("")
	now := time.Now()
	var swept []string
	var errs []error
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: record.InterceptSelector})
	if err != nil {
		return nil, fmt.Errorf("list intercept leases: %w", err)
	}
	for _, l := range list.Items {
		if record.LeaseAlive(&l, now) {
			continue
		}
		rv := l.ResourceVersion
		err := c.CoordinationV1().Leases(l.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, err)
		}
		swept = append(swept, l.Labels[record.LabelIntercept])
	}
	agents, err := leases.List(ctx, metav1.ListOptions{LabelSelector: record.AgentSelector})
	if err != nil {
		return swept, fmt.Errorf("list traffic-agent leases: %w", err)
	}
	// served: Services whose agent is alive (nothing to sweep) or was
	// just swept here (nothing left to sweep).
	served := map[string]bool{}
	for _, l := range agents.Items {
		key := l.Namespace + "/" + l.Labels[record.LabelService]
		if record.LeaseAlive(&l, now) {
			served[key] = true
			continue
		}
		if err := record.CleanupAgent(ctx, c, l.Namespace, l.Labels[record.LabelService], l.Annotations[record.AnnotationAgentID]); err != nil {
			errs = append(errs, err)
		}
		served[key] = true
		swept = append(swept, l.Name)
	}
	svcs, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return swept, errors.Join(append(errs, err)...)
	}
	for _, s := range svcs.Items {
		tk, err := record.TakeoverFromService(&s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if tk == nil || served[s.Namespace+"/"+s.Name] {
			continue
		}
		if err := record.CleanupAgent(ctx, c, s.Namespace, s.Name, tk.AgentID); err != nil {
			errs = append(errs, err)
		}
		served[s.Namespace+"/"+s.Name] = true
		swept = append(swept, s.Namespace+"/"+s.Name)
	}
	sel := metav1.ListOptions{LabelSelector: record.AgentSelector}
	var objs []metav1.Object
	if pods, err := c.CoreV1().Pods("").List(ctx, sel); err == nil {
		for i := range pods.Items {
			objs = append(objs, &pods.Items[i])
		}
	} else {
		errs = append(errs, err)
	}
	if secs, err := c.CoreV1().Secrets("").List(ctx, sel); err == nil {
		for i := range secs.Items {
			objs = append(objs, &secs.Items[i])
		}
	} else {
		errs = append(errs, err)
	}
	for _, o := range objs {
		svc := o.GetLabels()[record.LabelService]
		if served[o.GetNamespace()+"/"+svc] {
			continue
		}
		// An agent's objects never outlive its Lease: its installer
		// creates the Lease first and its cleanup deletes it last.
		if err := record.CleanupAgent(ctx, c, o.GetNamespace(), svc, o.GetAnnotations()[record.AnnotationAgentID]); err != nil {
			errs = append(errs, err)
		}
		served[o.GetNamespace()+"/"+svc] = true
		swept = append(swept, o.GetName())
	}
	return swept, errors.Join(errs...)
}

// Uninstall removes everything tether put into the cluster for
// intercepts, live or not: Services are restored; agents (Pods,
// Deployments), their Secrets, the ServiceAccounts, Roles and
// RoleBindings of in-cluster agents, and every Lease deleted. The RBAC
// objects would also go with their owner Lease, but the garbage collector
// is not there to see it on every cluster, and uninstall should leave
// nothing behind on its own. It returns what it restored or removed, as
// "Kind namespace/name restored|removed", so a caller can tell a cluster
// that had nothing of tether's from one it cleaned.
func Uninstall(ctx context.Context, c kubernetes.Interface) ([]string, error) {
	var r uninstallReport
	if svcs, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range svcs.Items {
			if _, ok := s.Annotations[record.Annotation]; ok {
				if _, err := record.Restore(ctx, c, s.Namespace, s.Name, ""); err != nil {
					r.errs = append(r.errs, fmt.Errorf("restore service %s/%s: %w", s.Namespace, s.Name, err))
				} else {
					r.done = append(r.done, "Service "+s.Namespace+"/"+s.Name+" restored")
				}
			}
		}
	} else {
		r.errs = append(r.errs, err)
	}
	sel := metav1.ListOptions{LabelSelector: record.ComponentSelector}
	deleteListed(ctx, &r, "Pod", c.CoreV1().Pods, sel, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	deleteListed(ctx, &r, "Deployment", c.AppsV1().Deployments, sel, metav1.DeleteOptions{})
	deleteListed(ctx, &r, "Secret", c.CoreV1().Secrets, sel, metav1.DeleteOptions{})
	deleteListed(ctx, &r, "ServiceAccount", c.CoreV1().ServiceAccounts, sel, metav1.DeleteOptions{})
	deleteListed(ctx, &r, "RoleBinding", c.RbacV1().RoleBindings, sel, metav1.DeleteOptions{})
	deleteListed(ctx, &r, "Role", c.RbacV1().Roles, sel, metav1.DeleteOptions{})
	deleteListed(ctx, &r, "Lease", c.CoordinationV1().Leases, sel, metav1.DeleteOptions{})
	return r.done, errors.Join(r.errs...)
}

// uninstallReport is what Uninstall removed and what failed.
type uninstallReport struct {
	done []string
	errs []error
}

// removed notes one deletion; one already gone (its owner took it along)
// was not this call's doing and is not reported.
func (r *uninstallReport) removed(kind, ns, name string, err error) {
	switch {
	case err == nil:
		r.done = append(r.done, kind+" "+ns+"/"+name+" removed")
	case !apierrors.IsNotFound(err):
		r.errs = append(r.errs, fmt.Errorf("delete %s %s/%s: %w", kind, ns, name, err))
	}
}

// listDeleter is the part of a typed client-go client of one kind that
// deleteListed uses; L is its list type (*corev1.PodList, say).
type listDeleter[L any] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// deleteListed deletes, one by one, every object of kind that sel lists
// in all namespaces, noting each in r. It is not DeleteCollection: that
// is served per namespace only, and Uninstall reports each object by
// name. client is the kind's client getter, such as c.CoreV1().Pods.
func deleteListed[L runtime.Object, C listDeleter[L]](ctx context.Context, r *uninstallReport, kind string, client func(namespace string) C, sel metav1.ListOptions, opts metav1.DeleteOptions) {
	list, err := client(metav1.NamespaceAll).List(ctx, sel)
	if err != nil {
		r.errs = append(r.errs, err)
		return
	}
	err = meta.EachListItem(list, func(o runtime.Object) error {
		m, err := meta.Accessor(o)
		if err != nil {
			return err
		}
		r.removed(kind, m.GetNamespace(), m.GetName(), client(m.GetNamespace()).Delete(ctx, m.GetName(), opts))
		return nil
	})
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("list %s: %w", kind, err))
	}
}
