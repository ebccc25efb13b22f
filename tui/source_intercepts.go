package tui

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/intercept/record"
)

type heldIntercept struct {
	i         *intercept.Intercept
	to, reach string
	// cancel ends the watch hold started on the intercept; whoever takes
	// the intercept out of held (StopIntercept, Close) calls it.
	cancel context.CancelFunc
}

// interceptRow is the one place an intercept.Status becomes a row. The
// counters come from the traffic-agent's Lease, so they are the same for
// intercepts this UI holds and those another process holds.
func interceptRow(clusterName string, st intercept.Status) InterceptInfo {
	traffic := fmt.Sprintf("%d conns", st.Connections)
	if len(st.Headers) > 0 {
		traffic += fmt.Sprintf(" / %d reqs", st.Requests)
	}
	return InterceptInfo{
		Name: st.Name, Cluster: clusterName, Namespace: st.Namespace, Service: st.Service, Port: st.Port,
		Headers: st.Headers, Alive: st.Alive,
		Traffic: traffic,
	}
}

func (s *workbenchSource) Intercepts(ctx context.Context) ([]InterceptInfo, error) {
	clusters, err := s.wb.Clusters()
	if err != nil {
		return nil, err
	}
	var out []InterceptInfo
	var errs []error
	for _, c := range clusters {
		cs, err := s.clientset(c.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			continue
		}
		list, err := intercept.List(ctx, cs)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
		for _, st := range list {
			r := interceptRow(c.Name, st)
			s.mu.Lock()
			if h, ok := s.held[r.Cluster+"/"+r.Name]; ok {
				r.Held, r.To, r.Reach = true, h.to, h.reach
			}
			s.mu.Unlock()
			if r.Reach == "" {
				r.Reach = s.reachOf(ctx, cs, r, st.Record)
			}
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Cluster+"/"+out[i].Name < out[j].Cluster+"/"+out[j].Name
	})
	return out, errors.Join(errs...)
}

// reachOf is where this machine reaches the Service port of r, held by
// another process (intercept.ReachOf): the port-forward its holder
// recorded, or the embedded service proxy's address; "" when neither.
func (s *workbenchSource) reachOf(ctx context.Context, cs kubernetes.Interface, r InterceptInfo, rec record.Record) string {
	url, err := intercept.ReachOf(ctx, s.wb.StateDir(), cs, rec)
	if err != nil {
		s.log.Debug("no way to the intercepted Service from this machine", "intercept", r.Cluster+"/"+r.Name, "err", err)
		return ""
	}
	return url
}

// StartIntercept is `tether intercept start` (intercept.StartOnWorkbench)
// with the form's fields as its flags. The intercept outlives the form's
// request: this source holds it until StopIntercept or Close.
func (s *workbenchSource) StartIntercept(ctx context.Context, spec InterceptSpec) (string, string, error) {
	st, err := intercept.StartOnWorkbench(ctx, s.wb, intercept.Request{
		Target: spec.Target(), Port: spec.Port, To: spec.To, Headers: spec.Headers,
		Verbosity: s.verbosity, Logger: s.log,
	})
	if err != nil {
		return "", "", err
	}
	i := st.Intercept
	rec := i.Record()
	key := spec.Cluster + "/" + rec.Name
	s.hold(key, &heldIntercept{i: i, to: spec.To, reach: i.Reach()}, i.Wait, func(err error) {
		// Stopped elsewhere (its Lease deleted) or its session lost: what
		// is left here is the proxy and the session, released now.
		s.log.Warn("intercept ended outside the UI", "intercept", key, "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := i.Stop(ctx); serr != nil {
			s.log.Debug("release the ended intercept", "intercept", key, "err", serr)
		}
	})
	return rec.Name, i.Reach(), nil
}

// hold records h under key and watches it through wait: an intercept that
// ends on its own (wait returns before the watch is cancelled) leaves held,
// so the next probe shows it as what the cluster says, no longer held, and
// ended runs. A new intercept under the same key is not touched.
func (s *workbenchSource) hold(key string, h *heldIntercept, wait func(context.Context) error, ended func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	s.mu.Lock()
	s.held[key] = h
	s.mu.Unlock()
	go func() {
		err := wait(ctx)
		if ctx.Err() != nil {
			return // taken out of held here, by StopIntercept or Close
		}
		s.mu.Lock()
		mine := s.held[key] == h
		if mine {
			delete(s.held, key)
		}
		s.mu.Unlock()
		cancel()
		if mine {
			ended(err)
		}
	}()
}

// StopIntercept stops an intercept this process holds through its handle
// (which also closes its proxy and session), any other through the
// cluster, as `tether intercept stop` does.
func (s *workbenchSource) StopIntercept(ctx context.Context, clusterName, name string) error {
	s.mu.Lock()
	h, ok := s.held[clusterName+"/"+name]
	delete(s.held, clusterName+"/"+name)
	s.mu.Unlock()
	if ok {
		h.cancel()
		return h.i.Stop(ctx)
	}
	cs, err := s.clientset(clusterName)
	if err != nil {
		return err
	}
	return intercept.StopByName(ctx, cs, name)
}

// joinHeaders shows an intercept's header match as the CLI's list does.
func joinHeaders(h map[string]string) string {
	if len(h) == 0 {
		return "global"
	}
	parts := make([]string, 0, len(h))
	for k, v := range h {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
