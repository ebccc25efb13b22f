package intercept

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/intercept/agentpod"
	"github.com/tether-dev/tether/intercept/record"
)

// Uninstall removes every kind of object an in-cluster traffic-agent
// consists of (intercept/agentpod's set, which includes RBAC objects the other
// cleanup paths leave to the garbage collector), and nothing that is not
// tether's.
func TestUninstallRemovesTheInClusterAgentsObjects(t *testing.T) {
	ctx := context.Background()
	rec := &record.Record{
		Name: "web-80", Namespace: "shop", Service: "web", Port: 80,
		Ports:            []record.Port{{Name: "http", Port: 80, TargetPort: 8080}},
		OriginalSelector: map[string]string{"app": "web"}, AgentLabels: record.AgentLabels("web"),
		Lease: record.LeaseName("web-80"), Agent: record.AgentName("web"), AgentPod: record.AgentName("web"), AgentID: "a1",
		Created: time.Now(),
	}
	set, err := agentpod.Objects(rec, "tok", agentpod.Options{Image: "tether:test"})
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := json.Marshal(record.Takeover{AgentID: "a1", OriginalSelector: rec.OriginalSelector, AgentLabels: rec.AgentLabels})
	objs := append([]runtime.Object{
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: map[string]string{record.Annotation: string(tk)}},
			Spec:       corev1.ServiceSpec{Selector: rec.AgentLabels},
		},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: rec.Agent, Namespace: "shop", Labels: record.AgentLabels("web")}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: rec.Lease, Namespace: "shop", Labels: record.Labels(rec.Name, "web")}},
		// Not tether's: must stay.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}},
	}, set.List()...)
	c := fake.NewClientset(objs...)

	done, err := Uninstall(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Service shop/web restored", "Pod shop/" + rec.AgentPod + " removed", "Lease shop/" + rec.Lease + " removed",
		"Role shop/" + rec.Agent + " removed", "RoleBinding shop/" + rec.Agent + " removed",
		"ServiceAccount shop/" + rec.Agent + " removed", "Secret shop/" + rec.Agent + " removed"} {
		if !slices.Contains(done, want) {
			t.Errorf("Uninstall reports %q, missing %q", done, want)
		}
	}
	// A second run finds nothing, and says so by reporting nothing.
	if again, err := Uninstall(ctx, c); err != nil || len(again) != 0 {
		t.Errorf("second Uninstall = %q, %v; want nothing", again, err)
	}
	gone := map[string]func() error{
		"service account": func() error {
			_, err := c.CoreV1().ServiceAccounts("shop").Get(ctx, rec.Agent, metav1.GetOptions{})
			return err
		},
		"role": func() error { _, err := c.RbacV1().Roles("shop").Get(ctx, rec.Agent, metav1.GetOptions{}); return err },
		"role binding": func() error {
			_, err := c.RbacV1().RoleBindings("shop").Get(ctx, rec.Agent, metav1.GetOptions{})
			return err
		},
		"secret": func() error {
			_, err := c.CoreV1().Secrets("shop").Get(ctx, rec.Agent, metav1.GetOptions{})
			return err
		},
		"pod": func() error {
			_, err := c.CoreV1().Pods("shop").Get(ctx, rec.AgentPod, metav1.GetOptions{})
			return err
		},
		"agent lease": func() error {
			_, err := c.CoordinationV1().Leases("shop").Get(ctx, rec.Agent, metav1.GetOptions{})
			return err
		},
		"intercept lease": func() error {
			_, err := c.CoordinationV1().Leases("shop").Get(ctx, rec.Lease, metav1.GetOptions{})
			return err
		},
	}
	for what, get := range gone {
		if err := get(); !apierrors.IsNotFound(err) {
			t.Errorf("%s after uninstall: err = %v, want not found", what, err)
		}
	}
	if _, err := c.CoreV1().ServiceAccounts("shop").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted the workload's own service account: %v", err)
	}
	if _, err := c.RbacV1().Roles("shop").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted the workload's own role: %v", err)
	}
	if _, err := c.RbacV1().RoleBindings("shop").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted the workload's own role binding: %v", err)
	}
	svc, err := c.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || svc.Spec.Selector["app"] != "web" || svc.Annotations[record.Annotation] != "" {
		t.Errorf("service not restored: %v %v %v", err, svc.Spec.Selector, svc.Annotations)
	}
}

// A cluster where intercepts were never used has nothing to uninstall,
// which Uninstall reports as an empty list rather than as work done.
func TestUninstallOfACleanClusterFindsNothing(t *testing.T) {
	c := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", Labels: map[string]string{"app": "web"}}},
	)
	done, err := Uninstall(context.Background(), c)
	if err != nil || len(done) != 0 {
		t.Errorf("Uninstall of a clean cluster = %q, %v; want nothing", done, err)
	}
}
