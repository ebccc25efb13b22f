package intercept

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/hashicorp/yamux"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/tunnel"
)

// ErrStopped is returned by Wait when someone else ended the intercept
// (tether intercept stop, uninstall, or the traffic-agent failing open).
var ErrStopped = errors.New("intercept was stopped from outside")

// Spec is what the user asks for.
type Spec struct {
	Cluster   string
	Namespace string
	Service   string
	// Port is the Service port to intercept.
	Port int32
	// To is the local address intercepted connections are carried to.
	To string
	// Headers make the intercept personal: only HTTP requests carrying
	// all of them are intercepted.
	Headers map[string]string
	// Name defaults to <service>-<port>.
	Name string
	// NoProbe skips checking that something listens at To: `run` starts
	// the local process only after the intercept is in place.
	NoProbe bool
}

// ParseTarget splits <cluster>/<namespace>/<service>.
func ParseTarget(s string) (cluster, namespace, service string, err error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("target %q: want <cluster>/<namespace>/<service>, for example hub/tether-system/principal", s)
	}
	return parts[0], parts[1], parts[2], nil
}

// ParseHeaders turns NAME=VALUE flags into a header map.
func ParseHeaders(in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, h := range in {
		k, v, ok := strings.Cut(h, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("header %q: want NAME=VALUE", h)
		}
		out[http.CanonicalHeaderKey(strings.TrimSpace(k))] = v
	}
	return out, nil
}

// AgentLauncher starts the traffic-agent for rec with token and returns a
// function that kills it (used only to roll back a failed start: a healthy
// agent ends itself when its Lease goes away).
type AgentLauncher func(ctx context.Context, rec *record.Record, token string) (kill func(), err error)

// Options configure the workbench side.
type Options struct {
	Client kubernetes.Interface
	// Embedded: the traffic-agent is a local process with a kwok Pod, and
	// the session is plain loopback. Other providers need an image and a
	// port-forward dialer (see AgentDeployment); not wired yet.
	Embedded bool
	// Launch starts the traffic-agent (see ExecAgent).
	Launch AgentLauncher
	// Holder identifies this workbench in the Lease.
	Holder string
	// RenewInterval is how often the Lease is renewed (default 2 s; the
	// lease lasts record.DefaultLeaseSeconds).
	RenewInterval time.Duration
	// ProxyAddr is where the outbound proxy listens (default 127.0.0.1:0).
	ProxyAddr string
	Logger    *slog.Logger
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

	cancel   context.CancelFunc
	done     chan struct{}
	errOnce  sync.Once
	err      error
	stopOnce sync.Once
	stopErr  error
}

// Start validates spec, takes the Service over and returns once new
// connections to the Service reach the traffic-agent. On error nothing it
// created is left in the cluster.
func Start(ctx context.Context, opts Options, spec Spec) (*Intercept, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RenewInterval == 0 {
		opts.RenewInterval = 2 * time.Second
	}
	if opts.ProxyAddr == "" {
		opts.ProxyAddr = "127.0.0.1:0"
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = host + "/" + strconv.Itoa(os.Getpid())
	}
	if !opts.Embedded {
		return nil, errors.New("intercepts run on the embedded provider only for now (the kind traffic-agent image and port-forward session are not wired yet)")
	}
	if opts.Launch == nil {
		return nil, errors.New("intercept: no traffic-agent launcher")
	}
	c := opts.Client
	target := fmt.Sprintf("%s/%s/%s", spec.Cluster, spec.Namespace, spec.Service)
	if spec.To == "" {
		return nil, errors.New("--to is required: the local address intercepted traffic goes to, for example 127.0.0.1:8080")
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
	if len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("service %s has no selector: there are no pods to take its traffic from", target)
	}
	if rec, err := record.FromService(svc); err != nil {
		return nil, err
	} else if rec != nil {
		alive, err := leaseAlive(ctx, c, rec)
		if err != nil {
			return nil, err
		}
		if alive {
			return nil, conflict(target, rec, spec)
		}
		opts.Logger.Info("sweeping a dead intercept", "name", rec.Name)
		if err := record.Cleanup(ctx, c, rec); err != nil {
			return nil, err
		}
		if svc, err = c.CoreV1().Services(spec.Namespace).Get(ctx, spec.Service, metav1.GetOptions{}); err != nil {
			return nil, err
		}
	}
	if !spec.NoProbe {
		if err := probe(ctx, spec.To); err != nil {
			return nil, err
		}
	}
	ports, err := resolvePorts(ctx, c, svc)
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
	agentLabels := record.Labels(name)
	rec := record.Record{
		Name: name, Cluster: spec.Cluster, Namespace: spec.Namespace, Service: spec.Service,
		Port: spec.Port, Ports: ports, Headers: spec.Headers,
		OriginalSelector: maps.Clone(svc.Spec.Selector), AgentLabels: agentLabels,
		Lease: "tether-intercept-" + name, AgentPod: "tether-agent-" + name,
		Holder: opts.Holder, Created: time.Now().UTC().Truncate(time.Second),
	}
	i := &Intercept{opts: opts, log: opts.Logger.With("intercept", name), rec: rec, to: spec.To, done: make(chan struct{})}
	kill, err := i.install(ctx, svc)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if kill != nil {
			kill()
		}
		if cerr := record.Cleanup(cctx, c, &rec); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if i.sess != nil {
			i.sess.Close()
		}
		return nil, err
	}
	i.serve()
	return i, nil
}

func conflict(target string, rec *record.Record, spec Spec) error {
	hint := fmt.Sprintf("(stop it first: tether intercept stop %s)", rec.Name)
	switch {
	case rec.Port == spec.Port && rec.Global() && len(spec.Headers) == 0:
		return fmt.Errorf("port %d of service %s is already intercepted globally by %q %s", spec.Port, target, rec.Name, hint)
	case rec.Port == spec.Port && len(spec.Headers) > 0 && maps.Equal(rec.Headers, spec.Headers):
		return fmt.Errorf("port %d of service %s is already intercepted with the same headers by %q %s", spec.Port, target, rec.Name, hint)
	}
	return fmt.Errorf("service %s is already intercepted by %q (port %d, %s); tether runs one intercept per Service %s",
		target, rec.Name, rec.Port, describeHeaders(rec.Headers), hint)
}

func describeHeaders(h map[string]string) string {
	if len(h) == 0 {
		return "global"
	}
	var parts []string
	for k, v := range h {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return "headers " + strings.Join(parts, ",")
}

func probe(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("nothing is listening at --to %s: start your local process first (%v)", addr, err)
	}
	return c.Close()
}

// resolvePorts finds the container port number behind each Service port,
// reading named target ports from the original pods: the agent's pod must
// declare the same ports for the EndpointSlice controller to pick it.
func resolvePorts(ctx context.Context, c kubernetes.Interface, svc *corev1.Service) ([]record.Port, error) {
	var pods *corev1.PodList
	var out []record.Port
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		p := record.Port{Name: sp.Name, Port: sp.Port}
		switch {
		case sp.TargetPort.IntValue() > 0:
			p.TargetPort = int32(sp.TargetPort.IntValue())
		case sp.TargetPort.StrVal != "":
			p.TargetPortName = sp.TargetPort.StrVal
			if pods == nil {
				var err error
				pods, err = c.CoreV1().Pods(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
				if err != nil {
					return nil, err
				}
			}
		find:
			for _, pod := range pods.Items {
				for _, ctr := range pod.Spec.Containers {
					for _, cp := range ctr.Ports {
						if cp.Name == p.TargetPortName {
							p.TargetPort = cp.ContainerPort
							break find
						}
					}
				}
			}
			if p.TargetPort == 0 {
				return nil, fmt.Errorf("service %s/%s port %d targets port %q, which no selected pod declares", svc.Namespace, svc.Name, sp.Port, sp.TargetPort.StrVal)
			}
		default:
			p.TargetPort = sp.Port
		}
		out = append(out, p)
	}
	return out, nil
}

func leaseAlive(ctx context.Context, c kubernetes.Interface, rec *record.Record) (bool, error) {
	l, err := c.CoordinationV1().Leases(rec.Namespace).Get(ctx, rec.Lease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return record.LeaseAlive(l, time.Now()), nil
}

func (i *Intercept) install(ctx context.Context, svc *corev1.Service) (kill func(), err error) {
	c, rec := i.opts.Client, &i.rec
	dur := int32(record.DefaultLeaseSeconds)
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: rec.Lease, Namespace: rec.Namespace, Labels: record.Labels(rec.Name)},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &rec.Holder, LeaseDurationSeconds: &dur, AcquireTime: &now, RenewTime: &now},
	}
	if _, err := c.CoordinationV1().Leases(rec.Namespace).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("an intercept named %q is already starting or running in %s/%s", rec.Name, rec.Cluster, rec.Namespace)
		}
		return nil, fmt.Errorf("create lease: %w", err)
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	kill, err = i.opts.Launch(ctx, rec, token)
	if err != nil {
		return nil, fmt.Errorf("start traffic-agent: %w", err)
	}
	pod, err := i.waitAgentPod(ctx)
	if err != nil {
		return kill, err
	}
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", pod.Annotations[record.AnnotationControl])
	if err != nil {
		return kill, fmt.Errorf("connect to traffic-agent: %w", err)
	}
	if i.sess, err = tunnel.Client(conn, token, i.log); err != nil {
		return kill, err
	}
	fresh, err := c.CoreV1().Services(rec.Namespace).Get(ctx, rec.Service, metav1.GetOptions{})
	if err != nil {
		return kill, err
	}
	if fresh.ResourceVersion != svc.ResourceVersion || !maps.Equal(fresh.Spec.Selector, rec.OriginalSelector) {
		return kill, fmt.Errorf("service %s/%s changed while the intercept was starting; try again", rec.Namespace, rec.Service)
	}
	if _, err := record.TakeOver(ctx, c, fresh, rec); err != nil {
		return kill, fmt.Errorf("take over service %s/%s: %w", rec.Namespace, rec.Service, err)
	}
	if err := i.waitRouted(ctx); err != nil {
		return kill, err
	}
	pl, err := net.Listen("tcp", i.opts.ProxyAddr)
	if err != nil {
		return kill, fmt.Errorf("outbound proxy: %w", err)
	}
	i.pl = pl
	return kill, nil
}

func (i *Intercept) waitAgentPod(ctx context.Context) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		pod, err := i.opts.Client.CoreV1().Pods(i.rec.Namespace).Get(ctx, i.rec.AgentPod, metav1.GetOptions{})
		switch {
		case err == nil && pod.Annotations[record.AnnotationControl] != "" && podReady(pod):
			return pod, nil
		case err == nil:
			last = "pod not ready yet (phase " + string(pod.Status.Phase) + ")"
		default:
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("traffic-agent did not come up within 30s: %s", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitRouted returns once the Service's EndpointSlices list the agent and
// nothing else, so Start returning means new connections are intercepted.
func (i *Intercept) waitRouted(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sel := discoveryv1.LabelServiceName + "=" + i.rec.Service
	for {
		list, err := i.opts.Client.DiscoveryV1().EndpointSlices(i.rec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err == nil {
			agent, other := false, false
			for _, s := range list.Items {
				for _, ep := range s.Endpoints {
					if ep.TargetRef != nil && ep.TargetRef.Name == i.rec.AgentPod {
						agent = true
					} else {
						other = true
					}
				}
			}
			if agent && !other {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s/%s did not route to the traffic-agent within 20s", i.rec.Namespace, i.rec.Service)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (i *Intercept) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	i.cancel = cancel
	go i.renew(ctx)
	go i.acceptStreams()
	go func() {
		select {
		case <-i.sess.CloseChan():
			// An agent closes the session when its Lease was deleted
			// (stop or uninstall from elsewhere): that is not a failure.
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := i.opts.Client.CoordinationV1().Leases(i.rec.Namespace).Get(gctx, i.rec.Lease, metav1.GetOptions{})
			cancel()
			if apierrors.IsNotFound(err) {
				i.fail(ErrStopped)
			} else {
				i.fail(errors.New("session with the traffic-agent was lost"))
			}
		case <-ctx.Done():
		}
	}()
	px := goproxy.NewProxyHttpServer()
	px.Logger = slog.NewLogLogger(i.log.Handler(), slog.LevelDebug)
	px.KeepAcceptEncoding = true
	px.KeepDestinationHeaders = true
	// Proxy: nil so the proxy never sends its dials to HTTP_PROXY (itself).
	px.Tr = &http.Transport{
		Proxy:               nil,
		DialContext:         func(ctx context.Context, _, addr string) (net.Conn, error) { return tunnel.Dial(ctx, i.sess, addr) },
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	px.ConnectDialWithReq = func(req *http.Request, _, addr string) (net.Conn, error) {
		return tunnel.Dial(req.Context(), i.sess, addr)
	}
	i.proxy = &http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = i.proxy.Serve(i.pl) }()
	i.log.Info("intercept running", "service", i.rec.Namespace+"/"+i.rec.Service, "port", i.rec.Port, "to", i.to, "proxy", i.pl.Addr().String())
}

func (i *Intercept) fail(err error) {
	i.errOnce.Do(func() {
		i.err = err
		close(i.done)
	})
}

func (i *Intercept) renew(ctx context.Context) {
	leases := i.opts.Client.CoordinationV1().Leases(i.rec.Namespace)
	t := time.NewTicker(i.opts.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := leases.Get(rctx, i.rec.Lease, metav1.GetOptions{})
		if err == nil {
			now := metav1.NewMicroTime(time.Now())
			l.Spec.RenewTime = &now
			_, err = leases.Update(rctx, l, metav1.UpdateOptions{})
		}
		cancel()
		if apierrors.IsNotFound(err) {
			i.fail(ErrStopped)
			return
		}
		if err != nil && ctx.Err() == nil {
			i.log.Warn("renew lease", "err", err)
		}
	}
}

func (i *Intercept) acceptStreams() {
	for {
		s, err := i.sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			up, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", i.to)
			if err != nil {
				i.log.Warn("local process unreachable", "to", i.to, "err", err)
				s.Close()
				return
			}
			tunnel.Splice(s, up)
		}()
	}
}

// Record is what the intercept saved on the Service.
func (i *Intercept) Record() record.Record { return i.rec }

// ProxyAddr is the outbound HTTP/CONNECT proxy's host:port.
func (i *Intercept) ProxyAddr() string { return i.pl.Addr().String() }

// ProxyEnv is the environment that sends a process's HTTP(S) traffic
// through the outbound proxy.
func (i *Intercept) ProxyEnv() []string {
	u := "http://" + i.ProxyAddr()
	return []string{"HTTP_PROXY=" + u, "HTTPS_PROXY=" + u, "http_proxy=" + u, "https_proxy=" + u, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"}
}

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

// Stop restores the Service exactly as it was and removes the agent's
// objects; the agent sees its Lease go and exits.
func (i *Intercept) Stop(ctx context.Context) error {
	i.stopOnce.Do(func() {
		i.cancel()
		i.stopErr = record.Cleanup(ctx, i.opts.Client, &i.rec)
		_ = i.proxy.Close()
		i.sess.Close()
		i.log.Info("intercept stopped")
	})
	return i.stopErr
}
