package trafficagent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tether-dev/tether/intercept/record"
)

func testAgent(t *testing.T, leases ...*coordinationv1.Lease) (*Agent, *fake.Clientset) {
	t.Helper()
	c := fake.NewClientset()
	for _, l := range leases {
		if _, err := c.CoordinationV1().Leases(l.Namespace).Create(context.Background(), l, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rec := record.Record{Namespace: "shop", Service: "web", Ports: []record.Port{{Port: 80, TargetPort: 8080}}}
	return &Agent{
		opts: Options{Client: c}, rec: &rec, log: slog.New(slog.DiscardHandler),
		routes: map[string]*route{}, sessions: map[string]*yamux.Session{}, trs: map[string]*http.Transport{},
	}, c
}

func interceptLease(t *testing.T, name string, port int32, headers map[string]string, seconds int32) *coordinationv1.Lease {
	t.Helper()
	rec := record.Record{Name: name, Namespace: "shop", Service: "web", Port: port, Headers: headers, Lease: record.LeaseName(name)}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewMicroTime(time.Now())
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: rec.Lease, Namespace: "shop", UID: types.UID("uid-" + name),
			Labels: record.Labels(name, "web"), Annotations: map[string]string{record.Annotation: string(b)}},
		Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: &seconds, RenewTime: &now},
	}
}

func renew(t *testing.T, c *fake.Clientset, name string) {
	t.Helper()
	leases := c.CoordinationV1().Leases("shop")
	l, err := leases.Get(context.Background(), record.LeaseName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	if _, err := leases.Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// An intercept whose workbench stops renewing loses its routes and its
// Lease; the other intercept of the Service stays.
func TestRefreshDropsOnlyTheExpiredIntercept(t *testing.T) {
	ctx := context.Background()
	a, c := testAgent(t,
		interceptLease(t, "web-80", 80, map[string]string{"X-Dev": "alice"}, 1),
		interceptLease(t, "web-80-2", 80, map[string]string{"X-Dev": "bob"}, 1))
	if n, err := a.refresh(ctx); err != nil || n != 2 {
		t.Fatalf("refresh = %d, %v; want 2 intercepts", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		renew(t, c, "web-80-2")
		n, err := a.refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unrenewed intercept was never dropped")
		}
	}
	if _, ok := a.routes["web-80-2"]; !ok {
		t.Fatalf("routes = %v: the renewed intercept was dropped", a.routes)
	}
	if _, err := c.CoordinationV1().Leases("shop").Get(ctx, record.LeaseName("web-80"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("lease of the expired intercept: err = %v, want not found", err)
	}
	if err := c.CoordinationV1().Leases("shop").Delete(ctx, record.LeaseName("web-80-2"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := a.refresh(ctx); err != nil || n != 0 {
		t.Fatalf("refresh = %d, %v; want none left", n, err)
	}
}

// A request goes to the most specific personal intercept whose headers it
// carries and whose workbench is attached.
func TestMatch(t *testing.T) {
	ctx := context.Background()
	a, _ := testAgent(t,
		interceptLease(t, "alice", 80, map[string]string{"X-Dev": "alice"}, 10),
		interceptLease(t, "alice-team", 80, map[string]string{"X-Dev": "alice", "X-Team": "a"}, 10),
		interceptLease(t, "bob", 80, map[string]string{"X-Dev": "bob"}, 10),
		interceptLease(t, "other-port", 81, map[string]string{"X-Dev": "carol"}, 10))
	if _, err := a.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alice", "alice-team", "other-port"} {
		a.sessions[n] = &yamux.Session{} // attached; never used here
	}
	ports := []record.Port{{Port: 80, TargetPort: 8080}}
	for _, tc := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"X-Dev": {"alice"}}, "alice"},
		{http.Header{"X-Dev": {"alice"}, "X-Team": {"a"}}, "alice-team"},
		{http.Header{"X-Dev": {"bob"}}, ""},   // not attached: fail open
		{http.Header{"X-Dev": {"carol"}}, ""}, // another port
		{http.Header{}, ""},
	} {
		got := ""
		if r := a.match(ports, tc.h); r != nil {
			got = r.rec.Name
		}
		if got != tc.want {
			t.Errorf("headers %v: routed to %q, want %q", tc.h, got, tc.want)
		}
	}
	if g, p := a.lookup(ports); g != nil || len(p) != 3 {
		t.Errorf("lookup = %v, %d personal; want no global and 3 personal", g, len(p))
	}
}

// In a pod, an agent that may no longer read its own Lease lost its Role
// with the Lease (stop deleted it, the garbage collector took the Role): it
// exits rather than retrying refused calls forever, and leaves the cleanup
// to whoever deleted the Lease.
func TestInPodAgentExitsWhenItsRightsGo(t *testing.T) {
	a, c := testAgent(t, interceptLease(t, "web-80", 80, nil, 10))
	a.rec.Agent = record.AgentName("web")
	c.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, a.rec.Agent, errors.New("no role"))
	})
	var own types.UID
	last := ""
	gone, err := a.report(context.Background(), &own, &last)
	if !gone || err != nil {
		t.Fatalf("report = %v, %v; want gone", gone, err)
	}
	c.ClearActions()
	a.cleanup()
	for _, act := range c.Actions() {
		t.Errorf("cleanup without rights made a call: %v %v", act.GetVerb(), act.GetResource().Resource)
	}
}

// An agent whose API server stops answering (its cluster was deleted)
// exits instead of serving nothing forever.
func TestAgentExitsWhenTheAPIServerStaysUnreachable(t *testing.T) {
	a, c := testAgent(t, interceptLease(t, "web-80", 80, nil, 10))
	a.rec.Agent = record.AgentName("web")
	a.opts.LeaseCheck, a.opts.ReportInterval, a.opts.Unreachable = 10*time.Millisecond, 10*time.Millisecond, 200*time.Millisecond
	c.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.watch(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the agent kept running against an unreachable API server")
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("the agent gave up after %v, before Unreachable (200ms)", took)
	}
}

// An agent that cannot list the original pods gives up after Unreachable
// and names the Service and selector, instead of waiting forever.
func TestRunFailsWhenThePodCacheNeverSyncs(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("pods is forbidden")
	})
	rec := record.Record{Namespace: "shop", Service: "web", OriginalSelector: map[string]string{"app": "web"},
		Ports: []record.Port{{Port: 80, TargetPort: 8080}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Client: c, Record: rec, Token: "t", ControlAddr: "127.0.0.1:0", ListenHost: "127.0.0.1",
			Embedded: true, Unreachable: 200 * time.Millisecond})
	}()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "shop/web") || !strings.Contains(err.Error(), "app=web") {
			t.Fatalf("err = %v, want one naming Service shop/web and selector app=web", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waiting for a pod cache that cannot sync")
	}
}
