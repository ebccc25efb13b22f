package tui

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// Live is what the watches on the hub hold: its Applications (every
// namespace) and its Agents, read from the informer caches. A Source
// delivers one after each burst of changes (see Source.Live).
type Live struct {
	// Hub is the cluster watched; empty when nothing is (the workbench is
	// down, or the UI quits).
	Hub string
	// AppsSynced says Apps is the hub's whole list: the informer has
	// listed once. Until then (the CRD is not installed yet, say) the
	// screens keep listing through the Source.
	AppsSynced bool
	Apps       []v1alpha1.Application
	// AgentsSynced is AppsSynced for Agents (tether-system on the hub).
	AgentsSynced bool
	Agents       []v1alpha1.Agent
}

// liveDebounce is how long a change waits for the rest of its burst, so
// a sync touching every Application becomes one message, not dozens.
const liveDebounce = 150 * time.Millisecond

// hubWatch runs the informers on one hub until stop.
type hubWatch struct {
	hub, host string
	stop      chan struct{}
	wg        sync.WaitGroup
}

// startHubWatch starts dynamic informers on the hub's Applications and
// Agents; each burst of changes (and each informer's first full list)
// ends in send with what the caches hold then.
func startHubWatch(dyn dynamic.Interface, hub, host string, send func(Live), log *slog.Logger) *hubWatch {
	w := &hubWatch{hub: hub, host: host, stop: make(chan struct{})}
	apps := dynamicinformer.NewFilteredDynamicInformer(dyn, v1alpha1.ApplicationsResource, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	agents := dynamicinformer.NewFilteredDynamicInformer(dyn, v1alpha1.AgentsResource, cluster.SystemNamespace, 0, cache.Indexers{}, nil).Informer()

	poke := make(chan struct{}, 1)
	kick := func() {
		select {
		case poke <- struct{}{}:
		default: // a message is due already; it will read the cache anew
		}
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kick() },
		UpdateFunc: func(any, any) { kick() },
		DeleteFunc: func(any) { kick() },
	}
	for _, inf := range []cache.SharedIndexInformer{apps, agents} {
		_, _ = inf.AddEventHandler(h)
		// A hub without the GitOps CRDs yet fails every list until fleet
		// installs them: normal, so Debug rather than client-go's error.
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, r *cache.Reflector, err error) {
			log.Debug("hub watch", "hub", hub, "resource", r.TypeDescription(), "err", err)
		})
		w.wg.Go(func() { inf.Run(w.stop) })
		w.wg.Go(func() {
			if cache.WaitForCacheSync(w.stop, inf.HasSynced) {
				kick()
			}
		})
	}
	w.wg.Go(func() {
		for {
			select {
			case <-w.stop:
				return
			case <-poke:
			}
			t := time.NewTimer(liveDebounce)
			select {
			case <-w.stop:
				t.Stop()
				return
			case <-t.C:
			}
			// What arrived during the wait is in this message's read.
			select {
			case <-poke:
			default:
			}
			send(liveFrom(hub, apps, agents, log))
		}
	})
	return w
}

// close stops the informers and waits for their goroutines.
func (w *hubWatch) close() {
	close(w.stop)
	w.wg.Wait()
}

// liveFrom reads the informer caches, sorted as a List would be.
func liveFrom(hub string, apps, agents cache.SharedIndexInformer, log *slog.Logger) Live {
	l := Live{Hub: hub, AppsSynced: apps.HasSynced(), AgentsSynced: agents.HasSynced()}
	if l.AppsSynced {
		l.Apps = []v1alpha1.Application{}
		for _, o := range apps.GetStore().List() {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			a, err := v1alpha1.ApplicationFrom(u)
			if err != nil {
				log.Warn("decode Application", "name", u.GetNamespace()+"/"+u.GetName(), "err", err)
				continue
			}
			l.Apps = append(l.Apps, *a)
		}
		sort.Slice(l.Apps, func(i, j int) bool {
			a, b := l.Apps[i], l.Apps[j]
			return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
		})
	}
	if l.AgentsSynced {
		l.Agents = []v1alpha1.Agent{}
		for _, o := range agents.GetStore().List() {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			var a v1alpha1.Agent
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &a); err != nil {
				log.Warn("decode Agent", "name", u.GetName(), "err", err)
				continue
			}
			l.Agents = append(l.Agents, a)
		}
		sort.Slice(l.Agents, func(i, j int) bool { return l.Agents[i].Name < l.Agents[j].Name })
	}
	return l
}
