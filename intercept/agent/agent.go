package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/hashicorp/yamux"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/svcproxy"
	"github.com/tether-dev/tether/intercept/tunnel"
)

// Options configure a traffic-agent.
type Options struct {
	Client kubernetes.Interface
	Record record.Record
	// Token authenticates the workbench's session.
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
	// ControlAddr is where the workbench connects.
	ControlAddr string
	// LeaseCheck is how often the Lease is read (default 1 s).
	LeaseCheck time.Duration
	Logger     *slog.Logger
}

// Agent is a running traffic-agent.
type Agent struct {
	opts    Options
	log     *slog.Logger
	rec     *record.Record
	pods    corelisters.PodLister
	router  *svcproxy.Router
	session atomic.Pointer[yamux.Session]
	next    atomic.Uint64
}

// Run serves until ctx ends or the Lease says the workbench is gone; in
// both cases it restores the Service (if still taken over by this
// intercept) and removes its own objects before returning.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LeaseCheck == 0 {
		opts.LeaseCheck = time.Second
	}
	a := &Agent{opts: opts, rec: &opts.Record, log: opts.Logger.With("intercept", opts.Record.Name)}
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
	f.WaitForCacheSync(ctx.Done())
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

	addrs := map[int32]string{}
	for _, p := range a.rec.Ports {
		if _, dup := addrs[p.TargetPort]; dup {
			continue // two Service ports on one container port: one listener
		}
		var port int32 // embedded: any free loopback port, announced on the pod
		if !opts.Embedded {
			port = p.TargetPort
		}
		l, err := net.Listen("tcp", net.JoinHostPort(opts.ListenHost, strconv.Itoa(int(port))))
		if err != nil {
			return fmt.Errorf("traffic-agent listener for port %d: %w", p.Port, err)
		}
		defer l.Close()
		addrs[p.TargetPort] = l.Addr().String()
		if p.Port == a.rec.Port {
			if a.rec.Global() {
				go a.serveGlobal(ctx, l, p)
			} else {
				go a.servePersonal(ctx, l, p)
			}
		} else {
			go a.serveForward(ctx, l, p)
		}
	}
	if opts.Embedded {
		if err := a.createPod(ctx, addrs, ctl.Addr().String()); err != nil {
			return err
		}
	}
	a.log.Info("traffic-agent serving", "control", ctl.Addr().String(), "ports", addrs)
	return a.watchLease(ctx)
}

// watchLease returns when the Lease is gone or has not changed for longer
// than its duration. Renewals are timed on the agent's own clock (when a
// new resourceVersion was seen), so clock skew between laptop and cluster
// does not matter.
func (a *Agent) watchLease(ctx context.Context) error {
	leases := a.opts.Client.CoordinationV1().Leases(a.rec.Namespace)
	lastRV, lastSeen := "", time.Now()
	t := time.NewTicker(a.opts.LeaseCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := leases.Get(rctx, a.rec.Lease, metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			a.log.Info("lease deleted: intercept over")
			return nil
		case err != nil:
			a.log.Warn("read lease", "err", err)
		case l.ResourceVersion != lastRV:
			lastRV, lastSeen = l.ResourceVersion, time.Now()
		}
		d := time.Duration(record.DefaultLeaseSeconds) * time.Second
		if l != nil && l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		if time.Since(lastSeen) > d {
			a.log.Warn("workbench stopped renewing the lease: failing open", "lastRenewal", lastSeen)
			return nil
		}
	}
}

func (a *Agent) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s := a.session.Load(); s != nil {
		s.Close()
	}
	restored, err := record.Restore(ctx, a.opts.Client, a.rec.Namespace, a.rec.Service, a.rec.Name)
	if err != nil {
		a.log.Error("restore service", "err", err)
	} else if restored {
		a.log.Warn("restored the service's original selector", "service", a.rec.Namespace+"/"+a.rec.Service)
	}
	if err := record.Cleanup(ctx, a.opts.Client, a.rec); err != nil {
		a.log.Error("cleanup", "err", err)
	}
}

func (a *Agent) createPod(ctx context.Context, addrs map[int32]string, control string) error {
	ann := map[string]string{record.AnnotationControl: control}
	var ports []corev1.ContainerPort
	for _, p := range a.rec.Ports {
		ann[svcproxy.LocalAddressKey(p.TargetPort)] = addrs[p.TargetPort]
		if p.Port == a.rec.Port {
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
		return fmt.Errorf("create traffic-agent pod: %w", err)
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

// acceptSessions keeps the newest authenticated workbench session: a
// workbench that reconnects replaces its old session.
func (a *Agent) acceptSessions(ctx context.Context, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			s, err := tunnel.Server(c, a.opts.Token, a.log)
			if err != nil {
				a.log.Warn("workbench session refused", "err", err)
				return
			}
			if old := a.session.Swap(s); old != nil {
				old.Close()
			}
			a.log.Info("workbench attached")
			for {
				st, err := s.AcceptStream()
				if err != nil {
					a.session.CompareAndSwap(s, nil)
					a.log.Info("workbench detached", "err", err)
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

// openWorkbench opens a stream for one intercepted connection.
func (a *Agent) openWorkbench() (net.Conn, error) {
	s := a.session.Load()
	if s == nil {
		return nil, errors.New("no workbench attached")
	}
	return s.OpenStream()
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
		return nil, fmt.Errorf("no ready original pod for port %d", p.Port)
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

func (a *Agent) serveGlobal(ctx context.Context, l net.Listener, p record.Port) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			up, err := a.openWorkbench()
			if err != nil {
				// Fail open: with no workbench the original pods serve.
				up, err = a.dialOriginal(ctx, p)
			}
			if err != nil {
				a.log.Warn("drop connection", "err", err)
				c.Close()
				return
			}
			tunnel.Splice(c, up)
		}()
	}
}

func (a *Agent) serveForward(ctx context.Context, l net.Listener, p record.Port) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			up, err := a.dialOriginal(ctx, p)
			if err != nil {
				a.log.Warn("drop connection", "err", err)
				c.Close()
				return
			}
			tunnel.Splice(c, up)
		}()
	}
}

// servePersonal routes HTTP requests with goproxy: requests carrying every
// configured header go to the workbench, all others to the original pods.
// goproxy is a forward proxy, so its NonproxyHandler turns the origin-form
// requests clients send to a Service into absolute ones first.
func (a *Agent) servePersonal(ctx context.Context, l net.Listener, p record.Port) {
	toWorkbench := &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return a.openWorkbench()
		},
		MaxIdleConnsPerHost: 16,
	}
	toOriginal := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return a.dialOriginal(ctx, p)
		},
		MaxIdleConnsPerHost: 16,
	}
	defer toWorkbench.CloseIdleConnections()
	defer toOriginal.CloseIdleConnections()
	headers := a.rec.Headers
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
		tr := toOriginal
		if matches(r.Header, headers) && a.session.Load() != nil {
			tr = toWorkbench
		}
		pctx.RoundTripper = goproxy.RoundTripperFunc(func(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
			return tr.RoundTrip(req)
		})
		return r, nil
	})
	srv := &http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	var once sync.Once
	stop := context.AfterFunc(ctx, func() { once.Do(func() { srv.Close() }) })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
		a.log.Warn("personal intercept server", "err", err)
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
