package agentpod

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/trafficagent"
)

// allowed is RBAC's rule matching for one namespaced request (Rules uses
// no wildcards). A list or watch with a name is one narrowed by a
// metadata.name field selector, which resourceNames can authorize.
func allowed(rules []rbacv1.PolicyRule, c call) bool {
	for _, r := range rules {
		if !slices.Contains(r.Verbs, c.verb) || !slices.Contains(r.APIGroups, c.group) || !slices.Contains(r.Resources, c.resource) {
			continue
		}
		if len(r.ResourceNames) == 0 || (c.name != "" && slices.Contains(r.ResourceNames, c.name)) {
			return true
		}
	}
	return false
}

type call struct{ verb, group, resource, name string }

func (c call) String() string {
	return fmt.Sprintf("%s %s/%s %s", c.verb, c.group, c.resource, c.name)
}

func callOf(a k8stesting.Action) call {
	c := call{verb: a.GetVerb(), group: a.GetResource().Group, resource: a.GetResource().Resource}
	switch a := a.(type) {
	case k8stesting.GetAction:
		c.name = a.GetName()
	case k8stesting.DeleteAction:
		c.name = a.GetName()
	case k8stesting.PatchAction:
		c.name = a.GetName()
	case k8stesting.UpdateAction:
		c.name = a.GetObject().(metav1.Object).GetName()
	}
	return c
}

// TestRulesCoverTheAgent runs the real traffic-agent (in-cluster mode)
// against a fake clientset through its whole life: start, an intercept
// whose workbench stops renewing (the agent drops it and deletes its
// Lease), the agent's own Lease renewals, and the fail-open cleanup. Every
// API call it makes must be allowed by Rules.
func TestRulesCoverTheAgent(t *testing.T) {
	rec := testRecord()
	for i := range rec.Ports {
		rec.Ports[i].TargetPort = 0 // in-cluster mode binds target ports: any free one here
	}
	rules := Rules(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	agentMeta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: record.AgentLabels("web"), Annotations: map[string]string{record.AnnotationAgentID: rec.AgentID}}
	}
	recJSON, _ := json.Marshal(rec)
	one := int32(1)
	now := metav1.NewMicroTime(time.Now())
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	cs := fake.NewClientset(svc,
		&coordinationv1.Lease{ObjectMeta: agentMeta(rec.Agent)},
		&coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: rec.Lease, Namespace: "shop", Labels: record.Labels(rec.Name, "web"), Annotations: map[string]string{record.Annotation: string(recJSON)}},
			Spec:       coordinationv1.LeaseSpec{LeaseDurationSeconds: &one, RenewTime: &now},
		},
		&corev1.Pod{ObjectMeta: agentMeta(rec.AgentPod)},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", Labels: map[string]string{"app": "web"}}},
		&corev1.Secret{ObjectMeta: agentMeta(rec.Agent)},
	)
	if _, err := record.TakeOver(ctx, cs, svc, &record.Takeover{Agent: rec.Agent, AgentID: rec.AgentID, OriginalSelector: rec.OriginalSelector, AgentLabels: rec.AgentLabels}); err != nil {
		t.Fatal(err)
	}
	cs.ClearActions()
	err := trafficagent.Run(ctx, trafficagent.Options{
		Client: cs, Record: *rec, Token: "tok", ListenHost: "127.0.0.1", ControlAddr: "127.0.0.1:0",
		LeaseCheck: 100 * time.Millisecond, ReportInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the agent did not end when its only intercept expired")
	}
	got, err := cs.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || got.Spec.Selector["app"] != "web" {
		t.Fatalf("the agent did not restore the service: %v %v", err, got.Spec.Selector)
	}

	seen := map[call]bool{}
	for _, a := range cs.Actions() {
		seen[callOf(a)] = true
	}
	var calls []call
	for c := range seen {
		calls = append(calls, c)
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].String() < calls[j].String() })
	for _, c := range calls {
		t.Logf("agent call: %v", c)
		if !allowed(rules, c) {
			t.Errorf("the Role does not allow the agent's call %v", c)
		}
	}
	for _, want := range []call{
		{"list", "", "pods", ""}, {"watch", "", "pods", ""}, {"update", "", "services", "web"}, {"delete", "coordination.k8s.io", "leases", rec.Lease},
		{"delete", "", "secrets", rec.Agent}, {"delete", "coordination.k8s.io", "leases", rec.Agent},
	} {
		if !seen[want] {
			t.Errorf("the agent never made %v: the test no longer exercises its life", want)
		}
	}

	// Nothing beyond what the agent needs.
	for _, c := range []call{
		{"create", "", "pods", ""}, {"delete", "", "pods", "someone-else"}, {"update", "", "services", "other"},
		{"get", "", "secrets", "other"}, {"patch", "", "services", "web"}, {"list", "", "services", ""},
		{"list", "discovery.k8s.io", "endpointslices", ""}, {"update", "coordination.k8s.io", "leases", "other"},
		{"create", "coordination.k8s.io", "leases", ""}, {"list", "", "secrets", ""}, {"watch", "", "secrets", ""},
		{"list", "", "secrets", rec.Agent}, {"delete", "", "pods", rec.AgentPod},
	} {
		if allowed(rules, c) {
			t.Errorf("the Role allows %v, which the agent never does", c)
		}
	}
}
