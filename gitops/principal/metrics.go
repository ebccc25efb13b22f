package principal

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

// Directions of propagation, the values of the "direction" label.
const (
	hubToSpoke = "hub_to_spoke"
	spokeToHub = "spoke_to_hub"
)

// propagationBuckets span a write seen at once (5 ms) to an agent away for
// minutes (about 164 s and beyond).
func propagationBuckets() []float64 { return prometheus.ExponentialBuckets(0.005, 2, 16) }

// metrics are the principal's Prometheus metrics, served on /metrics of
// its HTTP address. Each principal has its own registry: two in one
// process (tests) do not share counters. A nil *metrics records nothing.
type metrics struct {
	reg *prometheus.Registry

	connections, reconnects *prometheus.CounterVec // agent
	sent, acked, nacked     *prometheus.CounterVec // agent, kind: ours
	received, handled       *prometheus.CounterVec // agent, kind: the agent's
	rejected                *prometheus.CounterVec // agent, kind: the agent's we refused
	opsQueued               *prometheus.CounterVec // agent
	opsReported             *prometheus.CounterVec // agent, phase
	statusWrites            *prometheus.CounterVec // agent
	statusFailures          *prometheus.CounterVec // agent
	propagation             *prometheus.HistogramVec
	lastPropagation         *prometheus.GaugeVec // agent, direction

	mu sync.Mutex
	// seen are the agents that connected since the principal started:
	// their next stream is a reconnect.
	seen map[string]bool
	// last is the latest propagation delay per agent and direction, for
	// the Agent objects.
	last map[string]map[string]time.Duration
	// reported is the last finished operation counted per "agent/app":
	// every later status carries it again until a newer one replaces it.
	reported map[string]string
}

func newMetrics(p *Principal) *metrics {
	m := &metrics{
		reg:      prometheus.NewRegistry(),
		seen:     map[string]bool{},
		last:     map[string]map[string]time.Duration{},
		reported: map[string]string{},
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tether", Subsystem: "principal", Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.connections = counter("agent_connections_total", "Streams agents opened and the principal served (after their Hello).", "agent")
	m.reconnects = counter("agent_reconnects_total", "Streams of agents that had connected before since the principal started.", "agent")
	m.sent = counter("messages_sent_total", "Numbered messages sent to agents, resends after a reconnect included.", "agent", "kind")
	m.acked = counter("messages_acked_total", "Messages agents acknowledged, that is handled on the spoke.", "agent", "kind")
	m.nacked = counter("messages_nacked_total", "Messages agents refused for good (negative acknowledgements).", "agent", "kind")
	m.received = counter("messages_received_total", "Numbered messages received from agents.", "agent", "kind")
	m.handled = counter("messages_handled_total", "Messages of agents the principal acknowledged.", "agent", "kind")
	m.rejected = counter("messages_rejected_total", "Messages of agents the principal refused (negative acknowledgements sent).", "agent", "kind")
	m.opsQueued = counter("operations_queued_total", "Operations requested on the hub and queued for an agent.", "agent")
	m.opsReported = counter("operations_reported_total", "Finished operations whose result an agent reported and the principal wrote on the hub.", "agent", "phase")
	m.statusWrites = counter("status_writes_total", "Application statuses written on the hub.", "agent")
	m.statusFailures = counter("status_write_failures_total", "Application status writes that failed and will be retried.", "agent")
	m.propagation = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "tether", Subsystem: "principal", Name: "propagation_seconds",
		Help: "Propagation delay: hub_to_spoke from a hub change queued to the agent acknowledging it applied (the principal's clock); " +
			"spoke_to_hub from the spoke reading a status to its write on the hub (the spoke's clock to the principal's).",
		Buckets: propagationBuckets(),
	}, []string{"direction"})
	m.lastPropagation = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "tether", Subsystem: "principal", Name: "last_propagation_seconds",
		Help: "The latest propagation delay per agent and direction (see tether_principal_propagation_seconds).",
	}, []string{"agent", "direction"})
	m.reg.MustRegister(m.propagation, m.lastPropagation, newFleetCollector(p),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry.
func (m *metrics) handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// stream returns s counting what crosses it for agent.
func (m *metrics) stream(agent string, s protocol.Stream) protocol.Stream {
	if m == nil {
		return s
	}
	return protocol.Observe(s, streamObserver{m: m, agent: agent})
}

// connected counts a served stream of agent.
func (m *metrics) connected(agent string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	again := m.seen[agent]
	m.seen[agent] = true
	m.mu.Unlock()
	// Reconnects first: a scrape in between never shows a second
	// connection that is not yet a reconnect.
	if again {
		m.reconnects.WithLabelValues(agent).Inc()
	}
	m.connections.WithLabelValues(agent).Inc()
}

func (m *metrics) operationQueued(agent string) {
	if m != nil {
		m.opsQueued.WithLabelValues(agent).Inc()
	}
}

// observe records one propagation delay. The spoke-to-hub one compares
// two machines' clocks: on the workbench both are this machine's, but
// skew between real hosts shows up as delay (or as none: a negative
// difference counts as zero).
func (m *metrics) observe(agent, direction string, since time.Time) {
	if m == nil || since.IsZero() {
		return
	}
	d := max(time.Since(since), 0)
	// The Agent object's copy first: what a scrape shows is then there.
	m.mu.Lock()
	if m.last[agent] == nil {
		m.last[agent] = map[string]time.Duration{}
	}
	m.last[agent][direction] = d
	m.mu.Unlock()
	m.lastPropagation.WithLabelValues(agent, direction).Set(d.Seconds())
	m.propagation.WithLabelValues(direction).Observe(d.Seconds())
}

// statusWritten records the outcome of writing an agent's status of app
// on the hub (err nil: written).
func (m *metrics) statusWritten(agent, app string, st *protocol.StatusUpdate, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.statusFailures.WithLabelValues(agent).Inc()
		return
	}
	m.statusWrites.WithLabelValues(agent).Inc()
	m.observe(agent, spokeToHub, st.At)
	if st.Status == nil || !finished(st.Status.OperationState) || st.Status.OperationState.Operation.ID == "" {
		return
	}
	os := st.Status.OperationState
	m.mu.Lock()
	key := agent + "/" + app
	counted := m.reported[key] == os.Operation.ID
	m.reported[key] = os.Operation.ID
	m.mu.Unlock()
	if !counted {
		m.opsReported.WithLabelValues(agent, string(os.Phase)).Inc()
	}
}

// agentStatus puts the latest propagation delays into an Agent's status.
func (m *metrics) agentStatus(agent string, st *v1alpha1.AgentStatus) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.last[agent][hubToSpoke]; ok {
		st.LastHubToSpokeMillis = ptr(d.Milliseconds())
	}
	if d, ok := m.last[agent][spokeToHub]; ok {
		st.LastSpokeToHubMillis = ptr(d.Milliseconds())
	}
}

func ptr[T any](v T) *T { return &v }

// streamObserver counts one agent's stream.
type streamObserver struct {
	m     *metrics
	agent string
}

func (o streamObserver) Sent(kind string) { o.m.sent.WithLabelValues(o.agent, kind).Inc() }

// Acked also measures hub-to-spoke propagation: the agent acknowledges a
// message once it has handled it (a spec applied, an operation or refresh
// requested on the spoke's copy), and queued is the principal's own
// clock, so no skew enters.
func (o streamObserver) Acked(kind string, queued time.Time) {
	o.m.acked.WithLabelValues(o.agent, kind).Inc()
	o.m.observe(o.agent, hubToSpoke, queued)
}

func (o streamObserver) Nacked(kind string)   { o.m.nacked.WithLabelValues(o.agent, kind).Inc() }
func (o streamObserver) Received(kind string) { o.m.received.WithLabelValues(o.agent, kind).Inc() }
func (o streamObserver) Handled(kind string, _ time.Time) {
	o.m.handled.WithLabelValues(o.agent, kind).Inc()
}
func (o streamObserver) Rejected(kind string) { o.m.rejected.WithLabelValues(o.agent, kind).Inc() }

// fleetCollector reads, at each scrape, what the principal holds anyway:
// connected agents and every agent's outbox depth.
type fleetCollector struct {
	p                 *Principal
	connected, outbox *prometheus.Desc
}

func newFleetCollector(p *Principal) fleetCollector {
	return fleetCollector{p: p,
		connected: prometheus.NewDesc("tether_principal_agents_connected", "Agents with a stream being served.", nil, nil),
		outbox:    prometheus.NewDesc("tether_principal_outbox_depth", "Messages queued for an agent and not yet acknowledged.", []string{"agent"}, nil),
	}
}

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.outbox
}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.p.mu.Lock()
	connected := len(c.p.sessions)
	names := make([]string, 0, len(c.p.outboxes))
	boxes := make(map[string]*protocol.Outbox, len(c.p.outboxes))
	for n, o := range c.p.outboxes {
		names = append(names, n)
		boxes[n] = o
	}
	c.p.mu.Unlock()
	sort.Strings(names)
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, float64(connected))
	for _, n := range names {
		ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, float64(boxes[n].Len()), n)
	}
}
