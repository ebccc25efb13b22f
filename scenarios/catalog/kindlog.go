package catalog

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/gitops/deploy"
)

// kindPodLog is the log of the running pod of a component's Deployment
// (deploy.LabelName=name in tether-system) on a kind cluster: what the
// embedded scenarios read from the component's log file.
func kindPodLog(ctx context.Context, e *Env, clusterName, name string) (string, error) {
	cs, err := e.Kube(clusterName)
	if err != nil {
		return "", err
	}
	pods, err := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: deploy.LabelName + "=" + name})
	if err != nil {
		return "", fmt.Errorf("list the pods of %s/%s on %s: %w", deploy.DefaultNamespace, name, clusterName, err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if pod == nil || p.CreationTimestamp.After(pod.CreationTimestamp.Time) {
			pod = p
		}
	}
	if pod == nil {
		return "", fmt.Errorf("no running pod of %s/%s on %s (`kubectl --context tether-%s -n %s get pods -l %s=%s`)",
			deploy.DefaultNamespace, name, clusterName, clusterName, deploy.DefaultNamespace, deploy.LabelName, name)
	}
	b, err := cs.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("log of pod %s/%s on %s: %w", pod.Namespace, pod.Name, clusterName, err)
	}
	return string(b), nil
}
