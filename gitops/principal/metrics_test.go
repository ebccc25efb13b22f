package principal

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

// scrape reads the text exposition of h's /metrics: value by series,
// "name{label="value",...}" as written.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetric scrapes until series reaches at least want.
func waitMetric(t *testing.T, h http.Handler, series string, want float64) map[string]float64 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got := scrape(t, h)
		if got[series] >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// waitMetrics scrapes until every series has its value: what a session's
// goroutines record lands a little after what the test sees of it.
func waitMetrics(t *testing.T, h http.Handler, when string, want map[string]float64) map[string]float64 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got := scrape(t, h)
		var wrong []string
		for series, v := range want {
			if got[series] != v {
				wrong = append(wrong, fmt.Sprintf("%s = %v, want %v", series, got[series], v))
			}
		}
		if len(wrong) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:\n%s", when, strings.Join(wrong, "\n"))
		}
	}
}

// An agent's stream, driven through the principal: the metrics count the
// connection, what went each way, acks and nacks, the outbox's depth,
// status writes and both propagation delays, and the Agent object shows
// the latest delays and the restarts the agent reported.
func TestMetricsFollowAnAgentsStream(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		v1alpha1.ApplicationsResource: "ApplicationList",
		v1alpha1.AgentsResource:       "AgentList",
	}, hubApp("spoke-1", "web", ""))
	p, err := newPrincipal(Options{Logger: slog.New(slog.DiscardHandler), Namespace: "tether-system"}, dyn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), p.apps.HasSynced) {
		t.Fatal("informer did not sync")
	}
	go p.statusWriter(ctx)
	h := p.httpHandler()
	// The informer's event for web queues its spec; the stream's resync
	// then replaces it rather than sending it twice.
	for deadline := time.Now().Add(5 * time.Second); p.outbox("spoke-1").Len() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hub's Application was never queued")
		}
	}

	s := newAgentStream(t, "spoke-1")
	s.recv <- &protocol.Message{Hello: &protocol.Hello{Version: "test", Mode: protocol.ModeManaged, Apps: map[string]string{}, Restarts: 3}}
	done := make(chan error, 1)
	go func() { done <- p.serve(s) }()

	// The spoke lacks web: its spec goes down, stamped.
	var app *protocol.Message
	for app == nil {
		select {
		case m := <-s.sent:
			if m.App != nil {
				app = m
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the spec was not sent")
		}
	}
	if app.Queued.IsZero() {
		t.Fatal("the spec went down without the time it was queued")
	}
	waitMetrics(t, h, "before the ack", map[string]float64{
		`tether_principal_messages_sent_total{agent="spoke-1",kind="app"}`:     1,
		`tether_principal_agents_connected`:                                    1,
		`tether_principal_agent_connections_total{agent="spoke-1"}`:            1,
		`tether_principal_outbox_depth{agent="spoke-1"}`:                       1,
		`tether_principal_propagation_seconds_count{direction="hub_to_spoke"}`: 0,
	})

	// The agent applies it and acknowledges; then reports a status it
	// read 2 s ago, which the principal writes on the hub (the write
	// comes back through the informer and queues the spec again).
	<-s.waiting
	s.recv <- &protocol.Message{Ack: app.Seq}
	waitMetrics(t, h, "after the ack", map[string]float64{
		`tether_principal_messages_acked_total{agent="spoke-1",kind="app"}`:    1,
		`tether_principal_outbox_depth{agent="spoke-1"}`:                       0,
		`tether_principal_propagation_seconds_count{direction="hub_to_spoke"}`: 1,
	})
	<-s.waiting
	s.recv <- &protocol.Message{Seq: 1, Status: &protocol.StatusUpdate{Name: "web", At: time.Now().Add(-2 * time.Second),
		Status: &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Revision: "abc"}}}}
	got := waitMetrics(t, h, "after the status", map[string]float64{
		`tether_principal_status_writes_total{agent="spoke-1"}`:                   1,
		`tether_principal_messages_received_total{agent="spoke-1",kind="status"}`: 1,
		`tether_principal_messages_handled_total{agent="spoke-1",kind="status"}`:  1,
		`tether_principal_propagation_seconds_count{direction="spoke_to_hub"}`:    1,
	})
	if d := got[`tether_principal_propagation_seconds_sum{direction="spoke_to_hub"}`]; d < 2 {
		t.Errorf("spoke-to-hub delay %v s for a status read 2 s before it was written", d)
	}

	// A refresh the agent refuses is counted as nacked.
	p.outbox("spoke-1").PutIntent(protocol.Message{Refresh: &protocol.RefreshRequest{RepoURL: "http://git/sample.git"}})
	for {
		m := <-s.sent
		if m.Refresh != nil {
			<-s.waiting
			s.recv <- &protocol.Message{Ack: m.Seq, Nack: &protocol.Nack{Seq: m.Seq, Reason: "no"}}
			break
		}
	}
	waitMetric(t, h, `tether_principal_messages_nacked_total{agent="spoke-1",kind="refresh"}`, 1)

	// The Agent object shows the latest delays and the restarts.
	p.touchAgent(ctx, "spoke-1", func(*v1alpha1.AgentStatus) {})
	u, err := dyn.Resource(v1alpha1.AgentsResource).Namespace("tether-system").Get(ctx, "spoke-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var a v1alpha1.Agent
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &a); err != nil {
		t.Fatal(err)
	}
	if a.Status.Restarts != 3 {
		t.Errorf("Agent restarts %d, want the 3 the hello said", a.Status.Restarts)
	}
	if a.Status.LastHubToSpokeMillis == nil {
		t.Error("Agent has no hub-to-spoke delay")
	}
	if d := a.Status.LastSpokeToHubMillis; d == nil || *d < 2000 {
		t.Errorf("Agent spoke-to-hub delay %v ms, want at least 2000", d)
	}

	// The agent comes back: a reconnect.
	close(s.recv)
	<-done
	s2 := newAgentStream(t, "spoke-1")
	s2.recv <- hello()
	go func() { _ = p.serve(s2) }()
	waitMetrics(t, h, "after a reconnect", map[string]float64{
		`tether_principal_agent_connections_total{agent="spoke-1"}`: 2,
		`tether_principal_agent_reconnects_total{agent="spoke-1"}`:  1,
	})
}

// An operation requested on the hub is counted when queued, and when its
// result is written back, once however many statuses carry it.
func TestMetricsCountOperations(t *testing.T) {
	p, dyn := testPrincipal(t, hubApp("spoke-1", "web", ""))
	// The guarded clearing of the operation, which the fake cannot test.
	dyn.PrependReactor("patch", "applications", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, hubApp("spoke-1", "web", ""), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.statusWriter(ctx)
	app := &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "spoke-1", Name: "web"}, Operation: &v1alpha1.Operation{ID: "op-1"}}
	p.queueOperation("spoke-1", app)
	h := p.httpHandler()
	waitMetric(t, h, `tether_principal_operations_queued_total{agent="spoke-1"}`, 1)
	now := metav1.Now()
	done := &v1alpha1.ApplicationStatus{OperationState: &v1alpha1.OperationState{Operation: v1alpha1.Operation{ID: "op-1"}, Phase: v1alpha1.OperationSucceeded, StartedAt: now, FinishedAt: &now}}
	for i := range 3 {
		if err := p.handle(ctx, "spoke-1", &protocol.Message{Seq: uint64(i + 1), Status: &protocol.StatusUpdate{Name: "web", Status: done}}); err != nil {
			t.Fatal(err)
		}
		waitMetric(t, h, `tether_principal_status_writes_total{agent="spoke-1"}`, float64(i+1))
	}
	if n := scrape(t, h)[`tether_principal_operations_reported_total{agent="spoke-1",phase="Succeeded"}`]; n != 1 {
		t.Errorf("operations reported %v, want 1", n)
	}
}
