package fleet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/deploy"
)

// withGitForward port-forwards a local port to the Git server pod on the
// hub (client-go's port-forward, the path kubectl port-forward takes) for
// the duration of fn.
func withGitForward(ctx context.Context, hub cluster.Cluster, fn func(base string) error) error {
	base, stop, err := gitForward(ctx, hub)
	if err != nil {
		return err
	}
	defer stop()
	return fn(base)
}

// ReachRepo returns where this machine fetches repoURL: repoURL itself,
// or, for a repository of the workbench's Git server on kind (an address
// on the kind network, which the host may not resolve), the same path
// through a port-forward to the Git server's pod; stop ends it.
func ReachRepo(ctx context.Context, wb *cluster.Workbench, repoURL string) (string, func(), error) {
	noop := func() {}
	st, err := Load(wb)
	if err != nil || st == nil || !componentsAsPods(recordedTraits(st)) {
		return repoURL, noop, err
	}
	want, err1 := url.Parse(st.GitURL)
	got, err2 := url.Parse(repoURL)
	if err1 != nil || err2 != nil || want.Host != got.Host {
		return repoURL, noop, nil
	}
	hub, err := hubOf(wb)
	if err != nil {
		return "", noop, fmt.Errorf("no hub to reach the Git server on: %w", err)
	}
	base, stop, err := gitForward(ctx, hub)
	if err != nil {
		return "", noop, err
	}
	return base + got.Path, stop, nil
}

// gitForward port-forwards a local port to the Git server's pod on the hub
// and returns its base URL.
func gitForward(ctx context.Context, c cluster.Cluster) (string, func(), error) {
	hub := c.Name
	cfg, err := c.RESTConfig()
	if err != nil {
		return "", nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	pods, err := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + deploy.GitName})
	if err != nil {
		return "", nil, err
	}
	pod := servingPod(pods.Items)
	if pod == "" {
		return "", nil, fmt.Errorf("no running, ready Git server pod on %s (kubectl --context tether-%s -n %s get pods -l app.kubernetes.io/name=%s)", hub, hub, deploy.DefaultNamespace, deploy.GitName)
	}
	local, stop, err := portForward(ctx, cfg, deploy.DefaultNamespace, pod, int(deploy.GitPort))
	if err != nil {
		return "", nil, err
	}
	return "http://" + local, stop, nil
}

// servingPod picks a pod that serves: running, ready and not being
// deleted. A terminating pod of an earlier rollout may still be listed.
func servingPod(pods []corev1.Pod) string {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p.Name
			}
		}
	}
	return ""
}

func portForward(ctx context.Context, cfg *rest.Config, ns, pod string, port int) (string, func(), error) {
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", nil, err
	}
	u.Path = fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, pod)
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	localPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	stopCh, readyCh := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("%d:%d", localPort, port)}, stopCh, readyCh, io.Discard, io.Discard)
	if err != nil {
		return "", nil, err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- fw.ForwardPorts() }()
	select {
	case <-readyCh:
	case err := <-errCh:
		return "", nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	case <-ctx.Done():
		close(stopCh)
		return "", nil, ctx.Err()
	}
	return fmt.Sprintf("127.0.0.1:%d", localPort), func() { close(stopCh) }, nil
}
