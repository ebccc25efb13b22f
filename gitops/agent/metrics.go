package agent

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tether-dev/tether/gitops/protocol"
)

// Environment the agent reads its restart count from (restarts).
const (
	// EnvRestarts is set by the workbench's supervisor to how often it
	// has restarted the agent's process.
	EnvRestarts = "TETHER_RESTARTS"
	// EnvPodName and EnvPodNamespace name the agent's own Pod (the
	// downward API, in the kind manifests), whose restartCount is the
	// kubelet's count.
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
)

// Directions of propagation, the values of the "direction" label.
const (
	hubToSpoke       = "hub_to_spoke"
	spokeToPrincipal = "spoke_to_principal"
)

// metrics are the agent's Prometheus metrics, served on /metrics next to
// /healthz (MetricsHandler). Each agent has its own registry.
type metrics struct {
	reg                     *prometheus.Registry
	connections, reconnects prometheus.Counter
	sent, acked, nacked     *prometheus.CounterVec // kind: ours
	received, handled       *prometheus.CounterVec // kind: the principal's
	rejected                *prometheus.CounterVec // kind: the principal's we refused
	propagation             *prometheus.HistogramVec
	restarts                prometheus.Gauge
	// streams counts streams opened, to tell reconnects.
	streams atomic.Int64
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "tether", Subsystem: "agent", Name: name, Help: help}
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts(opts(name, help)))
		m.reg.MustRegister(c)
		return c
	}
	byKind := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts(opts(name, help)), []string{"kind"})
		m.reg.MustRegister(c)
		return c
	}
	m.connections = counter("connections_total", "Streams opened to the principal (Hello sent).")
	m.reconnects = counter("reconnects_total", "Streams opened to the principal after the first.")
	m.sent = byKind("messages_sent_total", "Numbered messages sent to the principal, resends after a reconnect included.")
	m.acked = byKind("messages_acked_total", "Messages the principal acknowledged.")
	m.nacked = byKind("messages_nacked_total", "Messages the principal refused for good (negative acknowledgements).")
	m.received = byKind("messages_received_total", "Numbered messages received from the principal.")
	m.handled = byKind("messages_handled_total", "Messages of the principal's handled on the spoke and acknowledged.")
	m.rejected = byKind("messages_rejected_total", "Messages of the principal's the spoke refused (negative acknowledgements sent).")
	m.propagation = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "tether", Subsystem: "agent", Name: "propagation_seconds",
		Help: "Propagation delay: hub_to_spoke from the principal queuing a hub change to its handling on the spoke (the principal's clock to the spoke's); " +
			"spoke_to_principal from a status queued on the spoke to the principal's acknowledgement (the spoke's clock).",
		// A write seen at once (5 ms) to an agent away for minutes.
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
	}, []string{"direction"})
	m.restarts = prometheus.NewGauge(prometheus.GaugeOpts(opts("restarts", "How often the agent's process was restarted, as of its last connection.")))
	m.reg.MustRegister(m.propagation, m.restarts,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("connected", "1 while a stream to the principal is up.")), func() float64 {
			if a.Connected() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("outbox_depth", "Messages queued for the principal and not yet acknowledged.")), func() float64 {
			return float64(a.out.Len())
		}),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MetricsHandler serves the agent's Prometheus metrics.
func (a *Agent) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{})
}

// stream returns s counting what crosses it; every stream is a
// connection, every one after the first a reconnect too.
func (m *metrics) stream(s protocol.Stream) protocol.Stream {
	m.connections.Inc()
	if m.streams.Add(1) > 1 {
		m.reconnects.Inc()
	}
	return protocol.Observe(s, observer{m})
}

// observe records one propagation delay. Hub-to-spoke compares the
// principal's clock with the spoke's: one machine's on the workbench, but
// skew between real hosts shows up as delay (or none: a negative
// difference counts as zero).
func (m *metrics) observe(direction string, since time.Time) {
	if since.IsZero() {
		return
	}
	m.propagation.WithLabelValues(direction).Observe(max(time.Since(since), 0).Seconds())
}

type observer struct{ m *metrics }

func (o observer) Sent(kind string) { o.m.sent.WithLabelValues(kind).Inc() }
func (o observer) Acked(kind string, queued time.Time) {
	o.m.acked.WithLabelValues(kind).Inc()
	if kind == "status" {
		o.m.observe(spokeToPrincipal, queued)
	}
}
func (o observer) Nacked(kind string)   { o.m.nacked.WithLabelValues(kind).Inc() }
func (o observer) Received(kind string) { o.m.received.WithLabelValues(kind).Inc() }

// Handled measures hub-to-spoke propagation: Serve acknowledges a message
// only once handle returned, so the change is on the spoke.
func (o observer) Handled(kind string, queued time.Time) {
	o.m.handled.WithLabelValues(kind).Inc()
	o.m.observe(hubToSpoke, queued)
}
func (o observer) Rejected(kind string) { o.m.rejected.WithLabelValues(kind).Inc() }

// restarts is how often this agent's process was restarted: what the
// workbench's supervisor says (EnvRestarts), else, in a Pod, the sum of
// its containers' restartCount (the agent may read Pods: its role is
// cluster-admin's), else 0. Read at every connection, so the count a
// restart brings is reported once the kubelet has recorded it.
func (a *Agent) restarts(ctx context.Context) int {
	n := a.countRestarts(ctx)
	a.metrics.restarts.Set(float64(n))
	return n
}

func (a *Agent) countRestarts(ctx context.Context) int {
	if v := a.getenv(EnvRestarts); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		a.log.Warn("ignoring an unreadable restart count", "env", EnvRestarts, "value", v)
	}
	name, ns := a.getenv(EnvPodName), a.getenv(EnvPodNamespace)
	if name == "" || ns == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pod, err := a.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		a.log.Warn("could not read the agent's own Pod for its restart count", "pod", ns+"/"+name, "err", err)
		return 0
	}
	statuses, _, _ := unstructured.NestedSlice(pod.Object, "status", "containerStatuses")
	n := 0
	for _, s := range statuses {
		if c, ok := s.(map[string]any); ok {
			r, _, _ := unstructured.NestedInt64(c, "restartCount")
			n += int(r)
		}
	}
	return n
}
