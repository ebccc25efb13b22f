package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/hashicorp/yamux"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/tether-dev/tether/cluster/netpipe"
	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/tunnel"
)

// Options configure a traffic-agent.
type Options struct {
	Client kubernetes.Interface
	// Record describes the agent (Namespace, Service, Ports,
	// OriginalSelector, AgentLabels, Agent, AgentID, AgentPod). Its
	// intercept fields are those of the intercept that started the agent
	// and are not used: routes come from the intercept Leases.
	Record record.Record
	// Token authenticates workbench sessions.
	Token string
	// Embedded: the agent runs as a local process beside a kwok Pod it
	// creates itself, annotated with its loopback listeners; original
	// pods are reached through their local-address annotations and
	// outbound dials of Service names through the service router.
	// Otherwise it runs in a pod and uses pod IPs and cluster DNS.
	Embedded bool
	// ListenHost is where service ports are served: 127.0.0.1 on
	// embedded (ports chosen freely), "" in a pod (the target ports).
	ListenHost string
	// ControlAddr is where workbenches connect.
	ControlAddr string
	// LeaseCheck is how often the intercept Leases are read (default 1 s).
	LeaseCheck time.Duration
	// ReportInterval is how often the agent renews its own Lease and
	// writes changed counters on it (default 2 s).
	ReportInterval time.Duration
	// Unreachable is how long the agent keeps running without a single
	// answer from the API server (default 2 min): past that its cluster is
	// most likely gone (a deleted embedded cluster, a laptop that moved on)
	// and a process serving nothing must not live on. Its workbench's next
	// start sweeps whatever the cluster still holds.
	Unreachable time.Duration
	Logger      *slog.Logger
}

// route is one intercept the agent serves, as read from its Lease.
type route struct {
	rec record.Record
	// rv and seen time renewals on the agent's own clock: seen is when rv
	// (see renewal) was first read, so clock skew between laptop and
	// cluster does not matter.
	rv    string
	seen  time.Time
	lease types.UID
	count *counter
}

type counter struct{ conns, reqs atomic.Int64 }

// Agent is a running traffic-agent: one per intercepted Service, serving
// every intercept of it.
type Agent struct {
	opts Options
	log  *slog.Logger
	rec  *record.Record
	// revoked: the agent lost the right to read its own Lease. In a pod
	// its Role is a dependent of that Lease, so the Lease was deleted
	// (stop, uninstall) and the garbage collector took the Role: whoever
	// deleted the Lease cleans up, and the agent's own calls would all be
	// refused.
	revoked atomic.Bool
	pods    corelisters.PodLister
	router  *svcproxy.Router
	next    atomic.Uint64

	refreshMu sync.Mutex // one refresh at a time
	mu        sync.Mutex // guards the maps below
	routes    map[string]*route
	sessions  map[string]*yamux.Session
	trs       map[string]*http.Transport

	// connsMu guards listeners and their connection sets. It is taken
	// before mu (routeFor reads the routes under it), never after, so
	// that deciding a connection's route and registering it is atomic
	// with respect to reconcile.
	connsMu   sync.Mutex
	listeners []*portConns
}

// Routes of the connections a port listener accepted. A connection is
// routed once, when it arrives; these name where it went, so that
// reconcile can tell which ones a new connection would no longer follow.
const (
	// routeOriginal: spliced whole to an original pod (no intercept on
	// the port, or its workbench not attached: fail open).
	routeOriginal = "original"
	// routeHTTP: handed to the HTTP router, which routes each request by
	// the personal intercepts of the port at that moment.
	routeHTTP = "http"
	// routeCarriedPrefix + name: carried whole to the workbench of global
	// intercept name.
	routeCarriedPrefix = "intercept/"
)

// portConns are the live connections of one port listener.
type portConns struct {
	ports []record.Port
	conns map[*trackedConn]struct{}
}

// trackedConn is one accepted connection and, once dialed, its upstream:
// closing it closes both, so neither side is left waiting on a peer that
// has nothing more to say (an idle gRPC stream would otherwise notice only
// at its next keepalive).
type trackedConn struct {
	route  string
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// add attaches c to the connection, or closes c if the connection was
// closed meanwhile.
func (t *trackedConn) add(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns = append(t.conns, c)
	return true
}

func (t *trackedConn) close() {
	t.mu.Lock()
	t.closed = true
	cs := t.conns
	t.conns = nil
	t.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// httpConn is a connection handed to the HTTP router: the server (or
// goproxy, for a hijacked one) closes it when done, and that is when it
// stops being tracked.
type httpConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *httpConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// Run serves until ctx ends, the last intercept's Lease is gone, or the
// agent's own Lease is gone or belongs to another instance; then it
// restores the Service (if still taken over by this instance) and removes
// its own objects before returning.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LeaseCheck == 0 {
		opts.LeaseCheck = time.Second
	}
	if opts.Unreachable == 0 {
		opts.Unreachable = 2 * time.Minute
	}
	if opts.ReportInterval == 0 {
		opts.ReportInterval = 2 * time.Second
	}
	a := &Agent{
		opts: opts, rec: &opts.Record,
		log:    opts.Logger.With("service", opts.Record.Namespace+"/"+opts.Record.Service, "agent", opts.Record.AgentID),
		routes: map[string]*route{}, sessions: map[string]*yamux.Session{}, trs: map[string]*http.Transport{},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	f := informers.NewSharedInformerFactoryWithOptions(opts.Client, 0,
		informers.WithNamespace(a.rec.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.SelectorFromSet(a.rec.OriginalSelector).String()
		}))
	a.pods = f.Core().V1().Pods().Lister()
	f.Core().V1().Pods().Informer()
	f.Start(ctx.Done())
	sctx, scancel := context.WithTimeout(ctx, opts.Unreachable)
	synced := f.WaitForCacheSync(sctx.Done())
	scancel()
	for _, ok := range synced {
		if !ok {
			return fmt.Errorf("traffic-agent for Service %s/%s: list the pods of selector %q: not synced within %s (is the API server reachable, and may the agent list pods in %s?)",
				a.rec.Namespace, a.rec.Service, labels.SelectorFromSet(a.rec.OriginalSelector).String(), opts.Unreachable, a.rec.Namespace)
		}
	}
	if opts.Embedded {
		a.router = svcproxy.NewRouter(svcproxy.RouterOptions{Client: opts.Client, Logger: a.log})
		if err := a.router.Start(ctx); err != nil {
			return err
		}
	}

	defer a.cleanup()

	ctl, err := net.Listen("tcp", opts.ControlAddr)
	if err != nil {
		return fmt.Errorf("traffic-agent control listener: %w", err)
	}
	defer ctl.Close()
	go a.acceptSessions(ctx, ctl)

	// Two Service ports on one container port share a listener: a
	// connection cannot tell them apart.
	byTarget := map[int32][]record.Port{}
	var targets []int32
	for _, p := range a.rec.Ports {
		if _, ok := byTarget[p.TargetPort]; !ok {
			targets = append(targets, p.TargetPort)
		}
		byTarget[p.TargetPort] = append(byTarget[p.TargetPort], p)
	}
	addrs := map[int32]string{}
	for _, tp := range targets {
		var port int32 // embedded: any free loopback port, announced on the pod
		if !opts.Embedded {
			port = tp
		}
		l, err := net.Listen("tcp", net.JoinHostPort(opts.ListenHost, strconv.Itoa(int(port))))
		if err != nil {
			return fmt.Errorf("traffic-agent listener for container port %d: %w", tp, err)
		}
		defer l.Close()
		addrs[tp] = l.Addr().String()
		go a.servePort(ctx, l, byTarget[tp])
	}
	if _, err := a.refresh(ctx); err != nil {
		return err
	}
	if opts.Embedded {
		if err := a.createPod(ctx, addrs, ctl.Addr().String()); err != nil {
			return err
		}
	}
	a.log.Info("traffic-agent serving", "control", ctl.Addr().String(), "ports", addrs)
	return a.watch(ctx)
}

// watch refreshes the routes and reports until the agent has nothing left
// to do.
func (a *Agent) watch(ctx context.Context) error {
	check := time.NewTicker(a.opts.LeaseCheck)
	defer check.Stop()
	report := time.NewTicker(a.opts.ReportInterval)
	defer report.Stop()
	var own types.UID
	last := ""
	answered := time.Now()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
			var n int
			n, err = a.refresh(ctx)
			if err != nil {
				a.log.Warn("read intercept leases", "err", err)
			} else if n == 0 {
				a.log.Info("no intercept left: restoring the service")
				return nil
			}
		case <-report.C:
			var gone bool
			gone, err = a.report(ctx, &own, &last)
			if gone {
				return nil
			}
			if err != nil {
				a.log.Warn("renew agent lease", "err", err)
			}
		}
		switch {
		case err == nil:
			answered = time.Now()
		case time.Since(answered) > a.opts.Unreachable:
			a.log.Error("API server unreachable: exiting", "for", time.Since(answered).Round(time.Second), "err", err)
			return nil
		}
	}
}

// report renews the agent's Lease and writes the counters on it when they
// changed. gone: the Lease was deleted (stop of the last intercept,
// uninstall) or replaced by another instance's.
func (a *Agent) report(ctx context.Context, own *types.UID, last *string) (gone bool, err error) {
	leases := a.opts.Client.CoordinationV1().Leases(a.rec.Namespace)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := leases.Get(rctx, a.rec.Agent, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		a.log.Info("agent lease deleted: exiting")
		return true, nil
	}
	if apierrors.IsForbidden(err) && !a.opts.Embedded {
		a.log.Info("agent lease no longer readable (its Role went with it): exiting", "err", err)
		a.revoked.Store(true)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if id := l.Annotations[record.AnnotationAgentID]; (id != "" && id != a.rec.AgentID) || (*own != "" && l.UID != *own) {
		a.log.Info("agent lease belongs to another instance: exiting", "other", id)
		return true, nil
	}
	*own = l.UID
	counts := a.counters()
	b, _ := json.Marshal(counts)
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	if string(b) != *last {
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[record.AnnotationCounters] = string(b)
	}
	if _, err := leases.Update(rctx, l, metav1.UpdateOptions{FieldManager: "tether-traffic-agent"}); err != nil {
		return false, err
	}
	*last = string(b)
	return false, nil
}

func (a *Agent) counters() map[string]record.Counters {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]record.Counters, len(a.routes))
	for name, r := range a.routes {
		out[name] = record.Counters{Connections: r.count.conns.Load(), Requests: r.count.reqs.Load()}
	}
	return out
}

// refresh reads the Service's intercept Leases into the route table and
// returns how many intercepts remain. An intercept whose Lease has not
// been renewed for its duration is dropped (its Lease deleted) while the
// others keep working: that is the per-intercept fail-open.
func (a *Agent) refresh(ctx context.Context) (int, error) {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	leases := a.opts.Client.CoordinationV1().Leases(a.rec.Namespace)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := leases.List(rctx, metav1.ListOptions{LabelSelector: record.ServiceInterceptSelector(a.rec.Service)})
	if err != nil {
		return 0, err
	}
	now := time.Now()
	a.mu.Lock()
	old := a.routes
	a.mu.Unlock()
	next := map[string]*route{}
	for _, l := range list.Items {
		rec, err := record.FromLease(&l)
		if err != nil {
			a.log.Warn("skip unreadable intercept lease", "lease", l.Name, "err", err)
			continue
		}
		r := &route{rec: *rec, rv: renewal(&l), seen: now, lease: l.UID, count: &counter{}}
		if o := old[rec.Name]; o != nil && o.lease == l.UID {
			r.count = o.count
			if o.rv == r.rv {
				r.seen = o.seen
			}
		}
		d := time.Duration(record.DefaultLeaseSeconds) * time.Second
		if l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		if now.Sub(r.seen) > d {
			a.log.Warn("workbench stopped renewing its lease: dropping the intercept", "intercept", rec.Name, "lastRenewal", r.seen)
			rv := l.ResourceVersion
			err := leases.Delete(rctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				a.log.Warn("delete expired intercept lease", "lease", l.Name, "err", err)
			}
			continue
		}
		next[rec.Name] = r
	}
	a.mu.Lock()
	a.routes = next
	var closing []*yamux.Session
	for name := range old {
		if _, ok := next[name]; ok {
			continue
		}
		a.log.Info("intercept removed", "intercept", name)
		if s := a.sessions[name]; s != nil {
			closing = append(closing, s)
			delete(a.sessions, name)
		}
		if tr := a.trs[name]; tr != nil {
			tr.CloseIdleConnections()
			delete(a.trs, name)
		}
	}
	for name, r := range next {
		if _, ok := old[name]; !ok {
			a.log.Info("intercept added", "intercept", name, "port", r.rec.Port, "headers", r.rec.Headers)
		}
	}
	a.mu.Unlock()
	// Closing the session tells the workbench its intercept is over.
	for _, s := range closing {
		s.Close()
	}
	a.reconcile()
	return len(next), nil
}

// renewal identifies one renewal of an intercept Lease: its
// resourceVersion changes with every write, its renewTime with every
// renewal (the agent compares them, it never orders them).
func renewal(l *coordinationv1.Lease) string {
	rt := ""
	if l.Spec.RenewTime != nil {
		rt = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	return l.ResourceVersion + "/" + rt
}

func (a *Agent) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a.mu.Lock()
	for _, s := range a.sessions {
		s.Close()
	}
	a.mu.Unlock()
	if a.revoked.Load() {
		a.log.Info("leaving the cleanup to whoever deleted the agent's lease")
		return
	}
	cleanup := record.CleanupAgent
	if !a.opts.Embedded {
		// In its pod the agent must not delete that pod: the kubelet
		// would kill it before it deleted its Lease. The pod is the
		// Lease's dependent, so it goes with it.
		cleanup = record.CleanupAgentInPod
	}
	if err := cleanup(ctx, a.opts.Client, a.rec.Namespace, a.rec.Service, a.rec.AgentID); err != nil {
		a.log.Error("clean up traffic-agent", "err", err)
		return
	}
	a.log.Info("service restored and traffic-agent removed")
}

func (a *Agent) createPod(ctx context.Context, addrs map[int32]string, control string) error {
	ann := map[string]string{record.AnnotationControl: control, record.AnnotationAgentID: a.rec.AgentID}
	var ports []corev1.ContainerPort
	for i, p := range a.rec.Ports {
		ann[svcproxy.LocalAddressKey(p.TargetPort)] = addrs[p.TargetPort]
		if i == 0 {
			ann[svcproxy.AnnotationLocalAddress] = addrs[p.TargetPort]
		}
		ports = append(ports, corev1.ContainerPort{Name: p.TargetPortName, ContainerPort: p.TargetPort, Protocol: corev1.ProtocolTCP})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: a.rec.AgentPod, Namespace: a.rec.Namespace, Labels: maps.Clone(a.rec.AgentLabels), Annotations: ann},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "traffic-agent", Image: "tether.dev/traffic-agent:embedded", Ports: dedupePorts(ports)}},
		},
	}
	_, err := a.opts.Client.CoreV1().Pods(a.rec.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create traffic-agent pod %s/%s: %w", a.rec.Namespace, a.rec.AgentPod, err)
	}
	return nil
}

func dedupePorts(in []corev1.ContainerPort) []corev1.ContainerPort {
	seen := map[int32]bool{}
	var out []corev1.ContainerPort
	for _, p := range in {
		if !seen[p.ContainerPort] {
			seen[p.ContainerPort] = true
			out = append(out, p)
		}
	}
	return out
}

// acceptSessions keeps the newest authenticated session per intercept: a
// workbench that reconnects replaces its old session. Only intercepts with
// a Lease get one, and only the Lease's holder (as the workbench presents
// it) replaces a live session.
func (a *Agent) acceptSessions(ctx context.Context, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			// Refreshing before the handshake's OK means the workbench's
			// Lease (created before it connects) is routed once it is
			// told OK.
			// Only an intercept with a Lease gets a session: a
			// workbench naming anything else would be stored under a
			// name nothing routes to (or that a later Lease of another
			// developer would inherit). Nor does a workbench that is
			// not the Lease's holder take its session over.
			s, name, err := tunnel.Server(c, a.opts.Token, func(name, holder string) error {
				if _, err := a.refresh(ctx); err != nil {
					a.log.Warn("read intercept leases", "err", err)
				}
				a.mu.Lock()
				defer a.mu.Unlock()
				r, ok := a.routes[name]
				if !ok {
					return fmt.Errorf("no intercept %s", name)
				}
				owner := r.rec.Holder
				switch {
				case holder != "" && owner != "" && holder != owner:
					return fmt.Errorf("intercept %s is held by %s", name, owner)
				case holder == "" && owner != "" && a.sessions[name] != nil && !a.sessions[name].IsClosed():
					// A workbench that presents no holder cannot
					// show it is the one already attached.
					return fmt.Errorf("intercept %s already has its workbench attached", name)
				}
				return nil
			}, a.log)
			if errors.Is(err, io.EOF) {
				// Closed before sending a byte: the kubelet's TCP
				// readiness probe, every second in a pod. Not worth a
				// warning each time.
				a.log.Debug("control connection closed before the handshake", "remote", c.RemoteAddr().String())
				return
			}
			if err != nil {
				a.log.Warn("workbench session refused", "remote", c.RemoteAddr().String(), "err", err)
				return
			}
			a.mu.Lock()
			old := a.sessions[name]
			a.sessions[name] = s
			if tr := a.trs[name]; tr != nil {
				tr.CloseIdleConnections()
			}
			a.mu.Unlock()
			if old != nil {
				old.Close()
			}
			a.log.Info("workbench attached", "intercept", name)
			// A global intercept routes its port only once its
			// workbench is attached: the connections passed through
			// until now (the ones that reconnected when another
			// port's intercept took the Service over) must move.
			a.reconcile()
			for {
				st, err := s.AcceptStream()
				if err != nil {
					a.mu.Lock()
					if a.sessions[name] == s {
						delete(a.sessions, name)
					}
					a.mu.Unlock()
					a.log.Info("workbench detached", "intercept", name, "err", err)
					return
				}
				go tunnel.ServeDial(ctx, st, a.dialOutbound, a.log)
			}
		}()
	}
}

func (a *Agent) dialOutbound(ctx context.Context, addr string) (net.Conn, error) {
	if a.router != nil {
		if _, _, _, err := svcproxy.ParseServiceAddress(addr, a.rec.Namespace); err == nil {
			return a.router.DialAddress(ctx, addr, a.rec.Namespace)
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// attached reports whether intercept name's workbench has a session.
func (a *Agent) attached(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[name] != nil
}

// openWorkbench opens a stream to intercept name's workbench for one
// intercepted connection.
func (a *Agent) openWorkbench(name string) (net.Conn, error) {
	a.mu.Lock()
	s, r := a.sessions[name], a.routes[name]
	a.mu.Unlock()
	if s == nil || r == nil {
		return nil, fmt.Errorf("workbench of intercept %s not attached", name)
	}
	st, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	r.count.conns.Add(1)
	return st, nil
}

// lookup returns the intercepts of the Service ports a listener serves:
// the global one, or the personal ones.
func (a *Agent) lookup(ports []record.Port) (global *route, personal []*route) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.routes {
		if !slices.ContainsFunc(ports, func(p record.Port) bool { return p.Port == r.rec.Port }) {
			continue
		}
		if r.rec.Global() {
			// Start refuses a global intercept beside others on a
			// port; if two raced past that, the older one wins.
			if global == nil || r.rec.Created.Before(global.rec.Created) || (r.rec.Created.Equal(global.rec.Created) && r.rec.Name < global.rec.Name) {
				global = r
			}
			continue
		}
		personal = append(personal, r)
	}
	return global, personal
}

// match picks the personal intercept a request belongs to: among those
// whose headers it carries and whose workbench is attached, the one with
// the most headers (the most specific), then by name.
func (a *Agent) match(ports []record.Port, h http.Header) *route {
	_, personal := a.lookup(ports)
	var best *route
	for _, r := range personal {
		if !matches(h, r.rec.Headers) || !a.attached(r.rec.Name) {
			continue
		}
		if best == nil || len(r.rec.Headers) > len(best.rec.Headers) || (len(r.rec.Headers) == len(best.rec.Headers) && r.rec.Name < best.rec.Name) {
			best = r
		}
	}
	return best
}

func (a *Agent) transport(name string) *http.Transport {
	a.mu.Lock()
	defer a.mu.Unlock()
	tr := a.trs[name]
	if tr == nil {
		tr = &http.Transport{
			DialContext:         func(context.Context, string, string) (net.Conn, error) { return a.openWorkbench(name) },
			MaxIdleConnsPerHost: 16,
		}
		a.trs[name] = tr
	}
	return tr
}

// originals are the addresses of the ready original pods for targetPort.
func (a *Agent) originals(p record.Port) []string {
	pods, err := a.pods.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []string
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || !podReady(pod) {
			continue
		}
		if a.opts.Embedded {
			if addr := svcproxy.LocalAddress(pod, p.TargetPort); addr != "" {
				out = append(out, addr)
			}
		} else if pod.Status.PodIP != "" {
			out = append(out, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(p.TargetPort))))
		}
	}
	sort.Strings(out)
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (a *Agent) dialOriginal(ctx context.Context, p record.Port) (net.Conn, error) {
	addrs := a.originals(p)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no ready original pod for port %d of %s/%s", p.Port, a.rec.Namespace, a.rec.Service)
	}
	start := int(a.next.Add(1))
	var errs []error
	var d net.Dialer
	for i := range addrs {
		c, err := d.DialContext(ctx, "tcp", addrs[(start+i)%len(addrs)])
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// servePort serves one listener. Each accepted connection is routed by
// the intercepts of its port at that moment: a global intercept gets it
// whole, personal intercepts put it through the HTTP router, and with
// neither it is spliced to an original pod. A connection keeps its route
// while that is still the route a new connection would get; reconcile
// closes it when not (see there).
func (a *Agent) servePort(ctx context.Context, l net.Listener, ports []record.Port) {
	p := ports[0]
	pc := &portConns{ports: ports, conns: map[*trackedConn]struct{}{}}
	a.connsMu.Lock()
	a.listeners = append(a.listeners, pc)
	a.connsMu.Unlock()
	hl := newConnListener(l.Addr())
	defer hl.Close()
	go a.serveHTTP(ctx, hl, ports)
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			rt, global := a.track(pc, c)
			var up net.Conn
			var err error
			switch {
			case global != nil:
				if up, err = a.openWorkbench(global.rec.Name); err != nil {
					// Fail open: with no workbench the original pods
					// serve, and the connection is a pass-through one.
					a.untrack(pc, rt)
					rt = a.trackAs(pc, c, routeOriginal)
					up, err = a.dialOriginal(ctx, p)
				}
			case rt.route == routeHTTP:
				hl.push(&httpConn{Conn: c, onClose: func() { a.untrack(pc, rt) }})
				return
			default:
				up, err = a.dialOriginal(ctx, p)
			}
			defer a.untrack(pc, rt)
			if err != nil {
				a.log.Warn("drop connection", "port", p.Port, "err", err)
				c.Close()
				return
			}
			if !rt.add(up) {
				c.Close()
				return
			}
			netpipe.Splice(c, up)
		}()
	}
}

// routeFor is the route a new connection of ports gets now, and the
// global intercept that carries it, if any.
func (a *Agent) routeFor(ports []record.Port) (string, *route) {
	global, personal := a.lookup(ports)
	switch {
	case global != nil && a.attached(global.rec.Name):
		return routeCarriedPrefix + global.rec.Name, global
	case global != nil, len(personal) == 0:
		// Fail open, or nothing intercepted on the port.
		return routeOriginal, nil
	default:
		return routeHTTP, nil
	}
}

// track decides c's route and registers it under connsMu, so that a
// routing change either precedes the decision or is followed by a
// reconcile that sees the connection.
func (a *Agent) track(pc *portConns, c net.Conn) (*trackedConn, *route) {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	name, global := a.routeFor(pc.ports)
	t := &trackedConn{route: name, conns: []net.Conn{c}}
	pc.conns[t] = struct{}{}
	return t, global
}

// trackAs registers c with a route decided by the caller (fail open).
func (a *Agent) trackAs(pc *portConns, c net.Conn, name string) *trackedConn {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	t := &trackedConn{route: name, conns: []net.Conn{c}}
	pc.conns[t] = struct{}{}
	return t
}

func (a *Agent) untrack(pc *portConns, t *trackedConn) {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	delete(pc.conns, t)
}

// reconcile closes every connection whose route is no longer the one a
// new connection of its port would get, so that its client reconnects
// and follows the current routing, as the embedded service proxy does
// for connections to an endpoint that left its Service. Without it a
// long-lived client would stay where it first landed: a gRPC stream that
// reconnected through the agent when another port's intercept took the
// Service over would be passed through to the original pods for ever,
// even once its own port is intercepted. It closes:
//   - pass-through connections, when a global intercept of their port has
//     its workbench attached, or personal intercepts route the port
//     (their requests would otherwise never be looked at);
//   - HTTP router connections, when a global intercept takes the port;
//   - connections carried to an intercept's workbench, when that intercept
//     is no longer the port's global one (stopped, expired) or its
//     workbench detached.
//
// HTTP router connections are kept when the port's last personal
// intercept goes: each request is routed on its own, so theirs already
// reach the original pods.
func (a *Agent) reconcile() {
	type batch struct {
		port        int32
		route, want string
		conns       []*trackedConn
	}
	var closing []batch
	a.connsMu.Lock()
	for _, pc := range a.listeners {
		want, _ := a.routeFor(pc.ports)
		byRoute := map[string][]*trackedConn{}
		for t := range pc.conns {
			if t.route == want || (t.route == routeHTTP && want == routeOriginal) {
				continue
			}
			byRoute[t.route] = append(byRoute[t.route], t)
			delete(pc.conns, t)
		}
		for _, r := range slices.Sorted(maps.Keys(byRoute)) {
			closing = append(closing, batch{port: pc.ports[0].Port, route: r, want: want, conns: byRoute[r]})
		}
	}
	a.connsMu.Unlock()
	for _, b := range closing {
		for _, t := range b.conns {
			t.close()
		}
		a.log.Info("closed connections whose route changed", "port", b.port, "route", b.route, "now", b.want, "count", len(b.conns))
	}
}

// serveHTTP routes the HTTP requests of personally intercepted
// connections with goproxy: requests carrying an intercept's headers go
// to its workbench, all others to the original pods. goproxy is a forward
// proxy, so its NonproxyHandler turns the origin-form requests clients
// send to a Service into absolute ones first.
func (a *Agent) serveHTTP(ctx context.Context, l net.Listener, ports []record.Port) {
	p := ports[0]
	toOriginal := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return a.dialOriginal(ctx, p)
		},
		MaxIdleConnsPerHost: 16,
	}
	defer toOriginal.CloseIdleConnections()
	px := goproxy.NewProxyHttpServer()
	px.Logger = slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	px.KeepAcceptEncoding = true
	px.KeepDestinationHeaders = true
	px.Tr = toOriginal
	px.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Scheme = "http"
		r.URL.Host = r.Host
		px.ServeHTTP(w, r)
	})
	px.OnRequest().DoFunc(func(r *http.Request, pctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		var tr http.RoundTripper = toOriginal
		if rt := a.match(ports, r.Header); rt != nil {
			rt.count.reqs.Add(1)
			tr = a.transport(rt.rec.Name)
		}
		pctx.RoundTripper = goproxy.RoundTripperFunc(func(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
			return tr.RoundTrip(req)
		})
		return r, nil
	})
	srv := &http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
		a.log.Warn("personal intercept server", "port", p.Port, "err", err)
	}
}

func matches(h http.Header, want map[string]string) bool {
	for k, v := range want {
		if h.Get(k) != v {
			return false
		}
	}
	return true
}

// connListener hands connections already accepted (and routed to HTTP)
// to an http.Server.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
