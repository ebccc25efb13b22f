package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SystemNamespace holds tether's own components in every cluster. On
// existing clusters it is the only thing tether creates, and down removes it.
const SystemNamespace = "tether-system"

// managedByLabel marks objects tether created, so cleanup never touches
// anything else.
const managedByLabel = "app.kubernetes.io/managed-by"

// ensureSystemNamespace creates tether's namespace and reports whether this
// call made it: on an existing cluster, down removes it only then.
func ensureSystemNamespace(ctx context.Context, kubeconfig string) (bool, error) {
	cs, err := clientset(kubeconfig)
	if err != nil {
		return false, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace, Labels: map[string]string{managedByLabel: "tether"}}}
	_, err = cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create namespace %s: %w", SystemNamespace, err)
	}
	return true, nil
}

func deleteSystemNamespace(ctx context.Context, kubeconfig string) error {
	cs, err := clientset(kubeconfig)
	if err != nil {
		return err
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, SystemNamespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Labels[managedByLabel] != "tether" {
		return nil // not ours: a namespace of that name the user made
	}
	err = cs.CoreV1().Namespaces().Delete(ctx, SystemNamespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
