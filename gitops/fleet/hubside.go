package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
)

// hubSide is the hub as spoke clean-up sees it.
type hubSide struct {
	cs  kubernetes.Interface
	dyn dynamic.Interface
	// context is the hub's kubeconfig context, for messages.
	context string
	// namespaceGone bounds the wait for a deleted namespace to disappear.
	namespaceGone time.Duration
}

func newHubSide(hub cluster.Cluster) (hubSide, error) {
	cfg, err := hub.RESTConfig()
	if err != nil {
		return hubSide{}, err
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return hubSide{}, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return hubSide{}, err
	}
	return hubSide{cs: cs, dyn: dyn, context: cluster.ContextName(hub.Name), namespaceGone: time.Minute}, nil
}

// hubSpokes is what the hub holds, by spoke name.
type hubSpokes struct {
	// Namespaces are the namespaces tether made (labelled managed-by
	// tether), tether-system aside: one per spoke.
	Namespaces map[string]bool
	// Apps counts the Applications of each namespace.
	Apps map[string]int
	// Agents are the Agent objects in tether-system.
	Agents map[string]bool
}

// describe says what the hub holds of name, for progress lines.
func (s hubSpokes) describe(name string) string {
	var parts []string
	if s.Namespaces[name] {
		parts = append(parts, "namespace "+name)
	}
	switch n := s.Apps[name]; {
	case n == 1:
		parts = append(parts, "1 Application")
	case n > 1:
		parts = append(parts, fmt.Sprintf("%d Applications", n))
	}
	if s.Agents[name] {
		parts = append(parts, "Agent "+cluster.SystemNamespace+"/"+name)
	}
	if len(parts) == 0 {
		return "nothing on the hub, only the fleet's record"
	}
	return strings.Join(parts, ", ")
}

func (h hubSide) survey(ctx context.Context) (hubSpokes, error) {
	out := hubSpokes{Namespaces: map[string]bool{}, Apps: map[string]int{}, Agents: map[string]bool{}}
	nss, err := h.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: deploy.LabelManagedBy + "=" + managedBy})
	if err != nil {
		return out, fmt.Errorf("list the hub's namespaces: %w", err)
	}
	for _, ns := range nss.Items {
		if ns.Name != cluster.SystemNamespace {
			out.Namespaces[ns.Name] = true
		}
	}
	apps, err := h.dyn.Resource(v1alpha1.ApplicationsResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return out, fmt.Errorf("list the hub's Applications: %w", err)
	}
	for _, a := range apps.Items {
		out.Apps[a.GetNamespace()]++
	}
	agents, err := h.dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return out, fmt.Errorf("list the hub's Agents: %w", err)
	}
	for _, a := range agents.Items {
		out.Agents[a.GetName()] = true
	}
	return out, nil
}

// forget removes a spoke's objects from the hub: the namespace tether made
// for it, waiting until it is gone (adding the spoke again right away
// would otherwise meet it terminating), or in a namespace someone else
// made, only the Applications; then its Agent object. The principal's
// informer sees the Applications go, so pushes no longer refresh them.
func (h hubSide) forget(ctx context.Context, name string) error {
	if name == cluster.SystemNamespace {
		return fmt.Errorf("%s is tether's own namespace, not a spoke's", name)
	}
	ns, err := h.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("read hub namespace %s: %w", name, err)
	case ns.Labels[deploy.LabelManagedBy] == managedBy:
		if err := h.deleteNamespace(ctx, name); err != nil {
			return err
		}
	default:
		if err := h.deleteApps(ctx, name); err != nil {
			return err
		}
	}
	err = h.dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete hub Agent %s/%s: %w", cluster.SystemNamespace, name, err)
	}
	return nil
}

func (h hubSide) deleteApps(ctx context.Context, ns string) error {
	res := h.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns)
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the Applications in hub namespace %s: %w", ns, err)
	}
	for _, a := range list.Items {
		if err := res.Delete(ctx, a.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete hub Application %s/%s: %w", ns, a.GetName(), err)
		}
	}
	return nil
}

func (h hubSide) deleteNamespace(ctx context.Context, ns string) error {
	if err := h.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete hub namespace %s: %w", ns, err)
	}
	wctx, cancel := context.WithTimeout(ctx, h.namespaceGone)
	defer cancel()
	for {
		_, err := h.cs.CoreV1().Namespaces().Get(wctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("hub namespace %s is still terminating after %s (%v): see `kubectl --context %s get namespace %s -o yaml` for what holds it",
				ns, h.namespaceGone, err, h.context, ns)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
