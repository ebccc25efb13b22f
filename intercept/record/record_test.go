package record

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

func takenOver(t *testing.T, id string) *corev1.Service {
	t.Helper()
	b, err := json.Marshal(Takeover{AgentID: id, OriginalSelector: map[string]string{"app": "web"}, AgentLabels: AgentLabels("web")})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: map[string]string{Annotation: string(b), "owner": "shop-team"}},
		Spec:       corev1.ServiceSpec{Selector: AgentLabels("web")},
	}
}

func agentObjects(id string) (*coordinationv1.Lease, *corev1.Secret, *corev1.Pod) {
	meta := metav1.ObjectMeta{Name: AgentName("web"), Namespace: "shop", Labels: AgentLabels("web"), Annotations: map[string]string{AnnotationAgentID: id}}
	return &coordinationv1.Lease{ObjectMeta: meta}, &corev1.Secret{ObjectMeta: meta}, &corev1.Pod{ObjectMeta: meta}
}

// An agent instance that was replaced must not undo its successor's
// takeover nor delete its objects; the instance that took over does both.
func TestCleanupAgentOnlyRemovesItsOwnInstance(t *testing.T) {
	ctx := context.Background()
	l, s, p := agentObjects("new")
	c := fake.NewClientset(takenOver(t, "new"), l, s, p)

	if err := CleanupAgent(ctx, c, "shop", "web", "old"); err != nil {
		t.Fatal(err)
	}
	svc, err := c.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.Annotations[Annotation]; !ok {
		t.Fatal("a stale instance restored its successor's takeover")
	}
	if _, err := c.CoordinationV1().Leases("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); err != nil {
		t.Fatalf("a stale instance deleted its successor's lease: %v", err)
	}

	if err := CleanupAgent(ctx, c, "shop", "web", "new"); err != nil {
		t.Fatal(err)
	}
	svc, err = c.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector["app"] != "web" || len(svc.Spec.Selector) != 1 {
		t.Errorf("selector = %v, want the original", svc.Spec.Selector)
	}
	if len(svc.Annotations) != 1 || svc.Annotations["owner"] != "shop-team" {
		t.Errorf("annotations = %v, want only the Service's own", svc.Annotations)
	}
	if _, err := c.CoordinationV1().Leases("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent lease: err = %v, want not found", err)
	}
	if _, err := c.CoreV1().Secrets("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent secret: err = %v, want not found", err)
	}
	if _, err := c.CoreV1().Pods("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent pod: err = %v, want not found", err)
	}
}

// forbid makes c refuse verb on resource, as the RBAC authorizer refuses
// the in-cluster agent what its Role does not grant.
func forbid(c *fake.Clientset, verb, resource string) {
	c.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New("not granted"))
	})
}

// The agent's Role grants neither listing Secrets nor (since the garbage
// collector removes its pod with its Lease) deleting pods. Cleanup must
// get by without both and still delete the Lease, which it skips on any
// earlier error.
func TestCleanupAgentInPodWithTheAgentsRights(t *testing.T) {
	ctx := context.Background()
	l, s, p := agentObjects("a1")
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password", Namespace: "shop", Labels: AgentLabels("web")}}
	c := fake.NewClientset(takenOver(t, "a1"), l, s, p, other)
	forbid(c, "list", "secrets")
	forbid(c, "delete", "pods")
	if err := CleanupAgentInPod(ctx, c, "shop", "web", "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoordinationV1().Leases("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent lease: err = %v, want not found", err)
	}
	if _, err := c.CoreV1().Secrets("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent secret: err = %v, want not found", err)
	}
	if _, err := c.CoreV1().Secrets("shop").Get(ctx, "db-password", metav1.GetOptions{}); err != nil {
		t.Errorf("a Secret not named after the agent was deleted: %v", err)
	}
	if _, err := c.CoreV1().Pods("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); err != nil {
		t.Errorf("the agent deleted its own pod (the garbage collector's job, after the lease): %v", err)
	}
	svc, err := c.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || svc.Spec.Selector["app"] != "web" {
		t.Errorf("service not restored: %v %v", err, svc.Spec.Selector)
	}
	for _, a := range c.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "pods" {
			t.Errorf("cleanup from the agent's pod tried to delete a pod: %v", a)
		}
	}
}

// From the workbench, CleanupAgent removes the pod too, and never lists
// Secrets either; a Secret of another instance is left alone.
func TestCleanupAgentGetsTheSecretByName(t *testing.T) {
	ctx := context.Background()
	l, _, p := agentObjects("a1")
	_, s, _ := agentObjects("a2")
	c := fake.NewClientset(l, s, p)
	forbid(c, "list", "secrets")
	if err := CleanupAgent(ctx, c, "shop", "web", "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Pods("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent pod: err = %v, want not found", err)
	}
	if _, err := c.CoordinationV1().Leases("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("agent lease: err = %v, want not found", err)
	}
	if _, err := c.CoreV1().Secrets("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); err != nil {
		t.Errorf("another instance's secret was deleted: %v", err)
	}
	// A read that fails for another reason keeps the Lease (the lock).
	l2, s2, _ := agentObjects("a3")
	c = fake.NewClientset(l2, s2)
	forbid(c, "get", "secrets")
	if err := CleanupAgent(ctx, c, "shop", "web", "a3"); err == nil {
		t.Fatal("cleanup that could not read the agent's secret reported success")
	}
	if _, err := c.CoordinationV1().Leases("shop").Get(ctx, AgentName("web"), metav1.GetOptions{}); err != nil {
		t.Errorf("the lease went before the secret: %v", err)
	}
}

func TestSelectorsTellInterceptAndAgentObjectsApart(t *testing.T) {
	ctx := context.Background()
	il := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName("web-80"), Namespace: "shop", Labels: Labels("web-80", "web")}}
	al, _, _ := agentObjects("a")
	other := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName("api-80"), Namespace: "shop", Labels: Labels("api-80", "api")}}
	c := fake.NewClientset(il, al, other)
	for _, tc := range []struct {
		sel  string
		want []string
	}{
		{ServiceInterceptSelector("web"), []string{LeaseName("web-80")}},
		{ServiceAgentSelector("web"), []string{AgentName("web")}},
		{InterceptSelector, []string{LeaseName("api-80"), LeaseName("web-80")}},
	} {
		list, err := c.CoordinationV1().Leases("shop").List(ctx, metav1.ListOptions{LabelSelector: tc.sel})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range list.Items {
			got = append(got, l.Name)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.sel, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.sel, got, tc.want)
			}
		}
	}
}

func TestTakeOverLeasesTheSelectorToTheAgentAndRestoreGivesItBack(t *testing.T) {
	ctx := context.Background()
	orig := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: map[string]string{"owner": "shop-team"}},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}},
	}
	c := fake.NewClientset(orig)
	tk := &Takeover{Agent: AgentName("web"), AgentID: "a1", OriginalSelector: map[string]string{"app": "web"}, AgentLabels: AgentLabels("web")}
	svc, err := TakeOver(ctx, c, orig, tk)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := v1alpha1.ParseLeasedFields(svc.Annotations)
	if err != nil || lf == nil {
		t.Fatalf("taken-over Service carries no valid %s: %v, %v", v1alpha1.AnnotationLeasedFields, lf, err)
	}
	if lf.Lease != AgentName("web") || len(lf.Fields) != 1 || lf.Fields[0] != "spec.selector" {
		t.Errorf("leased fields %+v, want spec.selector under the agent's Lease %s", lf, AgentName("web"))
	}
	if ok, err := Restore(ctx, c, "shop", "web", "a1"); !ok || err != nil {
		t.Fatalf("Restore = %v, %v", ok, err)
	}
	back, err := c.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Annotations[v1alpha1.AnnotationLeasedFields]; ok || back.Annotations["owner"] != "shop-team" || back.Spec.Selector["app"] != "web" {
		t.Errorf("restored Service: annotations %v, selector %v; want the original", back.Annotations, back.Spec.Selector)
	}
}
