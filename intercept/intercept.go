package intercept

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
)

// ErrStopped is returned by Wait when someone else ended the intercept
// (tether intercept stop, uninstall, or the traffic-agent failing open).
var ErrStopped = errors.New("intercept was stopped from outside")

// AgentLauncher starts the traffic-agent described by rec (its agent
// fields: Agent, AgentID, AgentPod or AgentDeployment, Ports, selectors)
// with token and returns a function that kills it (used only to roll back
// a failed start: a healthy agent ends itself when its last intercept's
// Lease goes away).
type AgentLauncher func(ctx context.Context, rec *record.Record, token string) (kill func(), err error)

// Options configure the workbench side.
type Options struct {
	Client kubernetes.Interface
	// Embedded: the traffic-agent is a local process with a kwok Pod, and
	// the session is plain loopback. Other providers (kind, existing) run
	// it as a bare Pod of tether's image and need both a Launch that
	// creates that Pod and its RBAC (intercept/agentpod's Launcher) and a
	// DialAgent (intercept/agentpod's PortForward).
	Embedded bool
	// Launch starts the traffic-agent (ExecAgent on embedded clusters,
	// agentpod.Launcher.Launch elsewhere).
	Launch AgentLauncher
	// DialAgent connects to the control port of the agent running in pod
	// (elsewhere than embedded: a port-forward through the API server).
	// Nil: the loopback address in the pod's tether.dev/control-address
	// annotation is dialed (embedded).
	DialAgent func(ctx context.Context, pod *corev1.Pod) (net.Conn, error)
	// AgentTimeout bounds the wait for the agent's pod to be ready
	// (default 30 s; a pod that has to be scheduled, or an image that has
	// to be pulled, may need more).
	AgentTimeout time.Duration
	// Holder identifies this workbench in the Lease.
	Holder string
	// RenewInterval is how often the Lease is renewed (default 2 s; the
	// lease lasts record.DefaultLeaseSeconds).
	RenewInterval time.Duration
	// ProxyAddr is where the outbound proxy listens (default 127.0.0.1:0).
	ProxyAddr string
	// Reach, when set, gives this machine a way to the intercepted Service
	// port once the intercept is routed (embedded: the service proxy's
	// loopback address; elsewhere a port-forward that follows the
	// Service's endpoints): the URL Reach returns, and closes it at Stop.
	// A failure is logged, not fatal: the intercept works without it.
	Reach  func(ctx context.Context, rec record.Record) (url string, closeFn func(), err error)
	Logger *slog.Logger
}

// Intercept is a running intercept, held by this process.
type Intercept struct {
	opts  Options
	log   *slog.Logger
	rec   record.Record
	to    string
	sess  *yamux.Session
	proxy *http.Server
	pl    net.Listener

	// runCtx lives from the Lease's creation to Stop: the Lease is renewed
	// under it from the start, so a slow attach (a pod being scheduled)
	// never lets it lapse.
	runCtx   context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	errOnce  sync.Once
	err      error
	stopOnce sync.Once
	stopErr  error
	last     bool

	reach      string
	closeReach func()
}

// Start validates spec, attaches to the Service's traffic-agent (starting
// it and taking the Service over if this is the Service's first
// intercept) and returns once new connections to the Service reach the
// agent and the agent routes this intercept. On error nothing it created
// is left in the cluster.
func Start(ctx context.Context, opts Options, spec Spec) (*Intercept, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RenewInterval == 0 {
		opts.RenewInterval = 2 * time.Second
	}
	if opts.AgentTimeout == 0 {
		opts.AgentTimeout = 30 * time.Second
	}
	if opts.ProxyAddr == "" {
		opts.ProxyAddr = "127.0.0.1:0"
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = host + "/" + strconv.Itoa(os.Getpid())
	}
	if !opts.Embedded && opts.DialAgent == nil {
		return nil, errors.New("intercept: a cluster that is not embedded runs the traffic-agent in a pod, and Options.DialAgent (intercept/agentpod's PortForward.Dial) is how the workbench reaches it: it is not set")
	}
	if opts.Launch == nil {
		return nil, errors.New("intercept: no traffic-agent launcher")
	}
	c := opts.Client
	target := fmt.Sprintf("%s/%s/%s", spec.Cluster, spec.Namespace, spec.Service)
	if spec.To == "" {
		return nil, &FieldError{Field: "To", After: " is required: the local address intercepted traffic goes to, for example 127.0.0.1:8080"}
	}
	svc, err := c.CoreV1().Services(spec.Namespace).Get(ctx, spec.Service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("service %s not found", target)
	}
	if err != nil {
		return nil, fmt.Errorf("read service %s: %w", target, err)
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == spec.Port }) {
		var have []string
		for _, p := range svc.Spec.Ports {
			have = append(have, strconv.Itoa(int(p.Port)))
		}
		return nil, fmt.Errorf("service %s has no port %d (its ports: %s)", target, spec.Port, strings.Join(have, ", "))
	}
	tk, err := record.TakeoverFromService(svc)
	if err != nil {
		return nil, err
	}
	selector := svc.Spec.Selector
	if tk != nil {
		selector = tk.OriginalSelector
	}
	if len(selector) == 0 {
		return nil, fmt.Errorf("service %s has no selector: there are no pods to take its traffic from", target)
	}
	live, err := serviceIntercepts(ctx, c, spec.Namespace, spec.Service, opts.Logger)
	if err != nil {
		return nil, err
	}
	if err := conflict(target, live, spec); err != nil {
		return nil, err
	}
	if !spec.NoProbe {
		if err := probe(ctx, spec.To); err != nil {
			return nil, err
		}
	}
	ports, err := resolvePorts(ctx, c, svc, selector)
	if err != nil {
		return nil, err
	}
	name := spec.Name
	if name == "" {
		name = spec.Service + "-" + strconv.Itoa(int(spec.Port))
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return nil, fmt.Errorf("intercept name %q: %s", name, strings.Join(errs, "; "))
	}
	agentName := record.AgentName(spec.Service)
	rec := record.Record{
		Name: name, Cluster: spec.Cluster, Namespace: spec.Namespace, Service: spec.Service,
		Port: spec.Port, Ports: ports, Headers: spec.Headers,
		OriginalSelector: maps.Clone(selector), AgentLabels: record.AgentLabels(spec.Service),
		Agent: agentName, Holder: opts.Holder, Created: time.Now().UTC().Truncate(time.Second),
	}
	// A bare pod on every provider: the agent's life is its intercepts'
	// (see intercept/agentpod), so a controller restarting it would be wrong.
	rec.AgentPod = agentName
	i := &Intercept{opts: opts, log: opts.Logger, rec: rec, to: spec.To, done: make(chan struct{})}
	if err := i.createLease(ctx, spec.Name == ""); err != nil {
		return nil, err
	}
	i.log = opts.Logger.With("intercept", i.rec.Name)
	i.runCtx, i.cancel = context.WithCancel(context.Background())
	go i.renew(i.runCtx)
	var installed *agentHandle
	err = i.recheck(ctx, target, spec)
	if err == nil {
		installed, err = i.attach(ctx)
	}
	if err != nil {
		i.cancel()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if i.sess != nil {
			i.sess.Close()
		}
		if cerr := record.Cleanup(cctx, c, &i.rec); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if installed != nil {
			installed.kill()
			if cerr := record.CleanupAgent(cctx, c, rec.Namespace, rec.Service, installed.id); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return nil, err
	}
	pl, err := net.Listen("tcp", opts.ProxyAddr)
	if err != nil {
		err = fmt.Errorf("outbound proxy on %s: %w", opts.ProxyAddr, err)
		i.cancel()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		i.sess.Close()
		_, rerr := removeIntercept(cctx, c, &i.rec, i.log)
		return nil, errors.Join(err, rerr)
	}
	i.pl = pl
	i.serve()
	if opts.Reach != nil {
		url, closeFn, err := opts.Reach(ctx, i.rec)
		if err != nil {
			i.log.Warn("no way to the intercepted Service from this machine", "err", err)
		} else {
			i.reach, i.closeReach = url, closeFn
		}
	}
	return i, nil
}

// Reach is the URL at which this machine reaches the intercepted Service
// port (Options.Reach), or "" when there is none.
func (i *Intercept) Reach() string { return i.reach }

// Record is what the intercept saved on its Lease (plus the agent
// instance serving it).
func (i *Intercept) Record() record.Record { return i.rec }

// Wait blocks until ctx ends (nil), the intercept is stopped from outside
// (ErrStopped) or the traffic-agent is lost.
func (i *Intercept) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-i.done:
		return i.err
	}
}

// Stop ends this intercept: its Lease is deleted, so the agent drops its
// routes; the other intercepts of the Service keep working. Stopping the
// last one restores the Service exactly as it was and removes the agent.
func (i *Intercept) Stop(ctx context.Context) error {
	i.stopOnce.Do(func() {
		i.cancel()
		if i.closeReach != nil {
			i.closeReach()
		}
		_ = i.proxy.Close()
		// Closing the session first sends this intercept's connections
		// to the original pods at once (the agent fails open per
		// connection) instead of after the agent's next Lease read.
		i.sess.Close()
		i.last, i.stopErr = removeIntercept(ctx, i.opts.Client, &i.rec, i.log)
		i.log.Info("intercept stopped", "serviceRestored", i.last)
	})
	return i.stopErr
}

// Restored reports whether Stop restored the Service and removed its
// agent, that is, whether this was the Service's last intercept.
func (i *Intercept) Restored() bool { return i.last }
