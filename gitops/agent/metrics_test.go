package agent

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

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

// principalStream is the principal's end as the agent sees it, driven by
// the test.
type principalStream struct {
	ctx  context.Context
	recv chan *protocol.Message
	sent chan *protocol.Message
}

func (s *principalStream) Context() context.Context { return s.ctx }
func (s *principalStream) Send(m *protocol.Message) error {
	s.sent <- m
	return nil
}
func (s *principalStream) Recv() (*protocol.Message, error) {
	select {
	case m := <-s.recv:
		return m, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// scrape reads the agent's /metrics: value by series as written.
func scrape(t *testing.T, a *Agent) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	a.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
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

// waitMetrics scrapes until every series has its value.
func waitMetrics(t *testing.T, a *Agent, when string, want map[string]float64) map[string]float64 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got := scrape(t, a)
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

// A stream served the way session serves it: the metrics count it, the
// principal's operation handled on the spoke (with its hub-to-spoke
// delay), and the status that goes up and is acknowledged.
func TestMetricsFollowAStream(t *testing.T) {
	a, _ := testAgent(t, spokeCopy("web"))
	for _, obj := range a.apps.GetStore().List() {
		a.queueStatus(obj.(*unstructured.Unstructured))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &principalStream{ctx: ctx, recv: make(chan *protocol.Message, 8), sent: make(chan *protocol.Message, 64)}
	a.setConnected(true)
	done := make(chan error, 1)
	go func() { done <- protocol.Serve(ctx, a.metrics.stream(s), a.out, a.handle, a.rejected) }()

	var status *protocol.Message
	for status == nil {
		select {
		case m := <-s.sent:
			if m.Status != nil {
				status = m
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no status went up")
		}
	}
	if status.Status.At.IsZero() {
		t.Error("the status went up without the time it was read")
	}
	waitMetrics(t, a, "before the principal answered", map[string]float64{
		`tether_agent_connected`:                          1,
		`tether_agent_connections_total`:                  1,
		`tether_agent_messages_sent_total{kind="status"}`: 1,
		`tether_agent_outbox_depth`:                       1,
	})
	// The principal acknowledges the status and asks for an operation it
	// queued 2 s ago.
	s.recv <- &protocol.Message{Ack: status.Seq}
	s.recv <- &protocol.Message{Seq: 1, Queued: time.Now().Add(-2 * time.Second),
		Operation: &protocol.OperationRequest{App: "web", Operation: v1alpha1.Operation{ID: "op-1"}}}
	got := waitMetrics(t, a, "after the operation", map[string]float64{
		`tether_agent_messages_acked_total{kind="status"}`:                       1,
		`tether_agent_messages_received_total{kind="operation"}`:                 1,
		`tether_agent_messages_handled_total{kind="operation"}`:                  1,
		`tether_agent_propagation_seconds_count{direction="hub_to_spoke"}`:       1,
		`tether_agent_propagation_seconds_count{direction="spoke_to_principal"}`: 1,
	})
	if d := got[`tether_agent_propagation_seconds_sum{direction="hub_to_spoke"}`]; d < 2 {
		t.Errorf("hub-to-spoke delay %v s for an operation queued 2 s before it was handled", d)
	}
	cancel()
	<-done

	// The next stream is a reconnect.
	_ = a.metrics.stream(s)
	waitMetrics(t, a, "after a reconnect", map[string]float64{
		`tether_agent_connections_total`: 2,
		`tether_agent_reconnects_total`:  1,
	})
}

// The agent reports its restarts: the supervisor's count when it gives
// one, else its Pod's containers' restartCount, else none.
func TestRestartsFromTheSupervisorOrThePod(t *testing.T) {
	pod := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "tether-agent-abc", "namespace": ns},
		"status":   map[string]any{"containerStatuses": []any{map[string]any{"name": "agent", "restartCount": int64(2)}}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.ApplicationsResource: "ApplicationList", {Version: "v1", Resource: "pods"}: "PodList"}, pod)
	a, err := newAgent(Options{Name: "spoke-1", Namespace: ns, Logger: slog.New(slog.DiscardHandler)}, dyn, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  map[string]string
		want int
	}{
		{env: nil, want: 0},
		{env: map[string]string{EnvRestarts: "4", EnvPodName: "tether-agent-abc", EnvPodNamespace: ns}, want: 4},
		{env: map[string]string{EnvPodName: "tether-agent-abc", EnvPodNamespace: ns}, want: 2},
		{env: map[string]string{EnvPodName: "gone", EnvPodNamespace: ns}, want: 0},
	} {
		a.getenv = func(k string) string { return c.env[k] }
		if got := a.restarts(context.Background()); got != c.want {
			t.Errorf("env %v: %d restarts, want %d", c.env, got, c.want)
		}
		if got := scrape(t, a)[`tether_agent_restarts`]; got != float64(c.want) {
			t.Errorf("env %v: tether_agent_restarts %v, want %d", c.env, got, c.want)
		}
	}
}
