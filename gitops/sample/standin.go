package sample

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/tether-dev/tether/cluster/svcproxy"
)

// StandInSelector selects the pods of the sample's Deployment and never a
// traffic-agent that took its Service over: an intercept's agent pod may
// carry the workload's labels, and its address must stay its own.
const StandInSelector = "app.kubernetes.io/name=" + AppName + ",app.kubernetes.io/component!=traffic-agent"

// StandIn makes a sample server at addr answer for the sample's kwok pods
// in namespace ns until ctx ends. On the embedded provider pods run
// nothing; the service proxy routes a Service's connections to the address
// its endpoint pods are annotated with, so StandIn writes addr into every
// sample pod's annotation for ServerPort, including pods created later (a
// rollout, a scale-up). Pods keep the annotation when StandIn stops: the
// next stand-in (an up that restarts it) overwrites it, and a dead address
// costs the proxy one refused dial.
func StandIn(ctx context.Context, cs kubernetes.Interface, ns, addr string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	key := svcproxy.LocalAddressKey(ServerPort)
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = StandInSelector }))
	pods := f.Core().V1().Pods()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer q.ShutDown()
	enqueue := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.Annotations[key] != addr {
			q.Add(p.Name)
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced) {
		return fmt.Errorf("stand in for the sample's pods in namespace %s: %w", ns, ctx.Err())
	}
	logger.Info("standing in for the sample's pods", "namespace", ns, "addr", addr)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: addr}}})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for {
		name, quit := q.Get()
		if quit {
			return nil
		}
		_, err := cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "tether-sample"})
		switch {
		case err == nil:
			logger.Info("sample pod served here", "pod", name, "addr", addr)
			q.Forget(name)
		case ctx.Err() != nil:
		default:
			// A pod deleted meanwhile is gone from the informer too; any
			// other failure is retried with backoff.
			logger.Info("annotate a sample pod", "pod", name, "err", err)
			if _, exists, _ := pods.Informer().GetStore().GetByKey(ns + "/" + name); exists {
				q.AddRateLimited(name)
			}
		}
		q.Done(name)
	}
}
