package trafficagent

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tether-dev/tether/intercept/record"
)

// route is one intercept the agent serves, as read from its Lease.
type route struct {
	rec record.Record
	// rv and seen time renewals on the agent's own clock: seen is when rv
	// (see renewal) was first read, so clock skew between laptop and
	// cluster does not matter.
	rv    string
	seen  time.Time
	lease types.UID
	count *counter
}

type counter struct{ conns, reqs atomic.Int64 }

// watch refreshes the routes and reports until the agent has nothing left
// to do.
func (a *Agent) watch(ctx context.Context) error {
	check := time.NewTicker(a.opts.LeaseCheck)
	defer check.Stop()
	report := time.NewTicker(a.opts.ReportInterval)
	defer report.Stop()
	var own types.UID
	last := ""
	answered := time.Now()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
			var n int
			n, err = a.refresh(ctx)
			if err != nil {
				a.log.Warn("read intercept leases", "err", err)
			} else if n == 0 {
				a.log.Info("no intercept left: restoring the service")
				return nil
			}
		case <-report.C:
			var gone bool
			gone, err = a.report(ctx, &own, &last)
			if gone {
				return nil
			}
			if err != nil {
				a.log.Warn("renew agent lease", "err", err)
			}
		}
		switch {
		case err == nil:
			answered = time.Now()
		case time.Since(answered) > a.opts.Unreachable:
			a.log.Error("API server unreachable: exiting", "for", time.Since(answered).Round(time.Second), "err", err)
			return nil
		}
	}
}

// report renews the agent's Lease and writes the counters on it when they
// changed. gone: the Lease was deleted (stop of the last intercept,
// uninstall) or replaced by another instance's.
func (a *Agent) report(ctx context.Context, own *types.UID, last *string) (gone bool, err error) {
	leases := a.opts.Client.CoordinationV1().Leases(a.rec.Namespace)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := leases.Get(rctx, a.rec.Agent, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		a.log.Info("agent lease deleted: exiting")
		return true, nil
	}
	if apierrors.IsForbidden(err) && !a.opts.Embedded {
		a.log.Info("agent lease no longer readable (its Role went with it): exiting", "err", err)
		a.revoked.Store(true)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if id := l.Annotations[record.AnnotationAgentID]; (id != "" && id != a.rec.AgentID) || (*own != "" && l.UID != *own) {
		a.log.Info("agent lease belongs to another instance: exiting", "other", id)
		return true, nil
	}
	*own = l.UID
	counts := a.counters()
	b, _ := json.Marshal(counts)
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	if string(b) != *last {
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[record.AnnotationCounters] = string(b)
	}
	if _, err := leases.Update(rctx, l, metav1.UpdateOptions{FieldManager: "tether-traffic-agent"}); err != nil {
		return false, err
	}
	*last = string(b)
	return false, nil
}

func (a *Agent) counters() map[string]record.Counters {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]record.Counters, len(a.routes))
	for name, r := range a.routes {
		out[name] = record.Counters{Connections: r.count.conns.Load(), Requests: r.count.reqs.Load()}
	}
	return out
}

// refresh reads the Service's intercept Leases into the route table and
// returns how many intercepts remain. An intercept whose Lease has not
// been renewed for its duration is dropped (its Lease deleted) while the
// others keep working: that is the per-intercept fail-open.
func (a *Agent) refresh(ctx context.Context) (int, error) {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	leases := a.opts.Client.CoordinationV1().Leases(a.rec.Namespace)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := leases.List(rctx, metav1.ListOptions{LabelSelector: record.ServiceInterceptSelector(a.rec.Service)})
	if err != nil {
		return 0, err
	}
	now := time.Now()
	a.mu.Lock()
	old := a.routes
	a.mu.Unlock()
	next := map[string]*route{}
	for _, l := range list.Items {
		rec, err := record.FromLease(&l)
		if err != nil {
			a.log.Warn("skip unreadable intercept lease", "lease", l.Name, "err", err)
			continue
		}
		r := &route{rec: *rec, rv: renewal(&l), seen: now, lease: l.UID, count: &counter{}}
		if o := old[rec.Name]; o != nil && o.lease == l.UID {
			r.count = o.count
			if o.rv == r.rv {
				r.seen = o.seen
			}
		}
		d := time.Duration(record.DefaultLeaseSeconds) * time.Second
		if l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		if now.Sub(r.seen) > d {
			a.log.Warn("workbench stopped renewing its lease: dropping the intercept", "intercept", rec.Name, "lastRenewal", r.seen)
			rv := l.ResourceVersion
			err := leases.Delete(rctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				a.log.Warn("delete expired intercept lease", "lease", l.Name, "err", err)
			}
			continue
		}
		next[rec.Name] = r
	}
	a.mu.Lock()
	a.routes = next
	var closing []*yamux.Session
	for name := range old {
		if _, ok := next[name]; ok {
			continue
		}
		a.log.Info("intercept removed", "intercept", name)
		if s := a.sessions[name]; s != nil {
			closing = append(closing, s)
			delete(a.sessions, name)
		}
		if tr := a.trs[name]; tr != nil {
			tr.CloseIdleConnections()
			delete(a.trs, name)
		}
	}
	for name, r := range next {
		if _, ok := old[name]; !ok {
			a.log.Info("intercept added", "intercept", name, "port", r.rec.Port, "headers", r.rec.Headers)
		}
	}
	a.mu.Unlock()
	// Closing the session tells the workbench its intercept is over.
	for _, s := range closing {
		s.Close()
	}
	a.reconcile()
	return len(next), nil
}

// renewal identifies one renewal of an intercept Lease: its
// resourceVersion changes with every write, its renewTime with every
// renewal (the agent compares them, it never orders them).
func renewal(l *coordinationv1.Lease) string {
	rt := ""
	if l.Spec.RenewTime != nil {
		rt = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	return l.ResourceVersion + "/" + rt
}

// attached reports whether intercept name's workbench has a session.
func (a *Agent) attached(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[name] != nil
}
