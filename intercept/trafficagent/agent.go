package trafficagent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/record"
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
