package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster/internal/providers"
)

// ProcessInfo is one process of a cluster whose provider runs it on this
// machine (embedded: its control plane).
type ProcessInfo = providers.Process

// ClusterStatus is what status reports of one cluster.
type ClusterStatus struct {
	Cluster
	Ready bool
	// Reason says why the cluster is not ready, and what to do.
	Reason string
	// Nodes is "ready/total".
	Nodes     string
	Processes []ProcessInfo
}

// Status reports every cluster of the workbench; it never changes anything.
func (w *Workbench) Status(ctx context.Context) (provider string, out []ClusterStatus, err error) {
	st, err := w.store.Load()
	if err != nil {
		return "", nil, err
	}
	prov, err := w.provider(st.Provider, nil)
	if len(st.Clusters) > 0 && err != nil {
		return "", nil, err
	}
	out = make([]ClusterStatus, len(st.Clusters))
	var g errgroup.Group
	for i, c := range st.Clusters {
		g.Go(func() error {
			s := ClusterStatus{Cluster: w.describe(c)}
			if pl, ok := prov.(providers.ProcessLister); ok {
				s.Processes = pl.Processes(c)
			}
			problems := prov.Problems(ctx, c)
			nodes, apiErr := apiStatus(ctx, c.Kubeconfig)
			s.Nodes = nodes
			switch {
			case apiErr != nil && len(problems) > 0:
				s.Reason = problems[0] + "; run `tether up` to restart it"
			case apiErr != nil:
				s.Reason = fmt.Sprintf("API server does not answer: %v", apiErr)
			case len(problems) > 0:
				s.Reason = problems[0] + "; run `tether up` to restart it"
			default:
				s.Ready = true
			}
			out[i] = s
			return nil
		})
	}
	_ = g.Wait()
	return st.Provider, out, nil
}

func clientset(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

func apiStatus(ctx context.Context, kubeconfig string) (string, error) {
	cs, err := clientset(kubeconfig)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return "", err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	nodesStr := fmt.Sprintf("%d/%d", ready, len(nodes.Items))
	if ready == 0 {
		return nodesStr, errors.New("no node is Ready")
	}
	return nodesStr, nil
}
