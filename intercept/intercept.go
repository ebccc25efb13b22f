package intercept

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/hashicorp/yamux"
	"golang.org/x/net/http/httpguts"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster/netpipe"
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
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want NAME=VALUE, for example --header X-Dev=alice", h)
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("--header %q: %q is not a valid HTTP header name: use letters, digits and !#$%%&'*+-.^_`|~ only (no spaces, colons or quotes)", h, k)
		}
		name := http.CanonicalHeaderKey(k)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--header %q: header %s is already given: pass each header once (a request must carry all of them to be intercepted)", h, name)
		}
		out[name] = v
	}
	return out, nil
}

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
	// creates that Pod and its RBAC (intercept/kube's Launcher) and a
	// DialAgent (intercept/kube's PortForward).
	Embedded bool
	// Launch starts the traffic-agent (ExecAgent on embedded clusters,
	// kube.Launcher.Launch elsewhere).
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

// errAgentGone: the Service's traffic-agent went away (its last intercept
// stopped) while this intercept was attaching; installing a new one is
// the way on.
var errAgentGone = errors.New("the traffic-agent went away while attaching")

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
		return nil, errors.New("intercept: a cluster that is not embedded runs the traffic-agent in a pod, and Options.DialAgent (intercept/kube's PortForward.Dial) is how the workbench reaches it: it is not set")
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
	// (see intercept/kube), so a controller restarting it would be wrong.
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

// createLease creates the intercept's Lease, which carries its Record:
// the agent reads its routes from it. With auto, a name already taken
// (a second personal intercept of the same port) gets a -2, -3… suffix.
func (i *Intercept) createLease(ctx context.Context, auto bool) error {
	c, base := i.opts.Client, i.rec.Name
	dur := int32(record.DefaultLeaseSeconds)
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = base + "-" + strconv.Itoa(n)
		}
		i.rec.Name, i.rec.Lease = name, record.LeaseName(name)
		b, err := json.Marshal(i.rec)
		if err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: i.rec.Lease, Namespace: i.rec.Namespace,
				Labels:      record.Labels(name, i.rec.Service),
				Annotations: map[string]string{record.Annotation: string(b)},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &i.rec.Holder, LeaseDurationSeconds: &dur, AcquireTime: &now, RenewTime: &now},
		}
		_, err = c.CoordinationV1().Leases(i.rec.Namespace).Create(ctx, lease, metav1.CreateOptions{})
		switch {
		case err == nil:
			return nil
		case apierrors.IsAlreadyExists(err) && auto && n < 20:
			continue
		case apierrors.IsAlreadyExists(err):
			return fmt.Errorf("an intercept named %q already exists in %s/%s: choose another --name, or stop it first: tether intercept stop %s", name, i.rec.Cluster, i.rec.Namespace, name)
		default:
			return fmt.Errorf("create lease %s/%s: %w", i.rec.Namespace, i.rec.Lease, err)
		}
	}
}

// recheck repeats the conflict check with this intercept's Lease in
// place: two starts racing past the first check both see each other here
// and both give up, rather than both routing the same port.
func (i *Intercept) recheck(ctx context.Context, target string, spec Spec) error {
	live, err := serviceIntercepts(ctx, i.opts.Client, i.rec.Namespace, i.rec.Service, i.log)
	if err != nil {
		return err
	}
	live = slices.DeleteFunc(live, func(r record.Record) bool { return r.Name == i.rec.Name })
	return conflict(target, live, spec)
}

// serviceIntercepts returns the live intercepts of a Service and deletes
// the Leases of dead ones (their workbench stopped renewing; the agent
// would drop them within a second anyway).
func serviceIntercepts(ctx context.Context, c kubernetes.Interface, namespace, service string, log *slog.Logger) ([]record.Record, error) {
	leases := c.CoordinationV1().Leases(namespace)
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: record.ServiceInterceptSelector(service)})
	if err != nil {
		return nil, fmt.Errorf("list intercepts of %s/%s: %w", namespace, service, err)
	}
	var out []record.Record
	now := time.Now()
	for _, l := range list.Items {
		rec, err := record.FromLease(&l)
		if err != nil {
			return nil, err
		}
		if record.LeaseAlive(&l, now) {
			out = append(out, *rec)
			continue
		}
		log.Info("sweeping a dead intercept", "name", rec.Name)
		rv := l.ResourceVersion
		if err := leases.Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return nil, fmt.Errorf("delete dead intercept lease %s/%s: %w", namespace, l.Name, err)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// conflict explains why spec cannot share its port with the live
// intercepts of the Service. Several personal intercepts with different
// headers share a port, and intercepts of different ports never
// conflict; a global intercept takes every connection of its port, so it
// shares it with nobody.
func conflict(target string, live []record.Record, spec Spec) error {
	var personal []string
	for _, r := range live {
		if r.Port != spec.Port {
			continue
		}
		hint := "stop it first: tether intercept stop " + r.Name
		switch {
		case r.Global() && len(spec.Headers) == 0:
			return fmt.Errorf("port %d of service %s is already intercepted globally by %q (%s)", spec.Port, target, r.Name, hint)
		case r.Global():
			return fmt.Errorf("port %d of service %s is intercepted globally by %q, which takes every connection, so a personal intercept would never see a request (%s)", spec.Port, target, r.Name, hint)
		case len(spec.Headers) > 0 && maps.Equal(r.Headers, spec.Headers):
			return fmt.Errorf("port %d of service %s is already intercepted with the same headers (%s) by %q (%s)", spec.Port, target, describeHeaders(r.Headers), r.Name, hint)
		}
		personal = append(personal, r.Name)
	}
	if len(spec.Headers) == 0 && len(personal) > 0 {
		return fmt.Errorf("port %d of service %s has personal intercepts (%s); a global intercept would take their requests (stop them first: tether intercept stop %s)",
			spec.Port, target, strings.Join(personal, ", "), strings.Join(personal, "; tether intercept stop "))
	}
	return nil
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
// reading named target ports from the original pods (those matching
// selector): the agent's pod must declare the same ports for the
// EndpointSlice controller to pick it.
func resolvePorts(ctx context.Context, c kubernetes.Interface, svc *corev1.Service, selector map[string]string) ([]record.Port, error) {
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
				pods, err = c.CoreV1().Pods(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
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

// agentHandle is the agent an intercept attaches to; kill is set when
// this workbench started it.
type agentHandle struct {
	id, token string
	kill      func()
}

// attach connects this intercept to the Service's agent, installing the
// agent first if there is none. It retries when the agent it found goes
// away meanwhile (its last intercept stopped as this one arrived). It
// returns the agent it installed, for the caller's rollback.
func (i *Intercept) attach(ctx context.Context) (installed *agentHandle, err error) {
	for range 3 {
		var h *agentHandle
		h, err = i.ensureAgent(ctx)
		if h != nil && h.kill != nil {
			installed = h // even on error: its Lease and Secret exist
		}
		if err != nil {
			return installed, err
		}
		err = i.connect(ctx, h)
		if err == nil || !errors.Is(err, errAgentGone) {
			return installed, err
		}
		i.log.Info("traffic-agent went away while attaching: trying again", "err", err)
		if i.sess != nil {
			i.sess.Close()
			i.sess = nil
		}
		if installed != nil {
			installed.kill()
			installed = nil
		}
	}
	return installed, err
}

// ensureAgent returns the Service's live agent, or installs one. The
// agent's Lease is the lock: whoever creates it installs the agent, the
// others read the session token from the agent's Secret.
func (i *Intercept) ensureAgent(ctx context.Context) (*agentHandle, error) {
	c, rec := i.opts.Client, &i.rec
	leases := c.CoordinationV1().Leases(rec.Namespace)
	for range 5 {
		l, err := leases.Get(ctx, rec.Agent, metav1.GetOptions{})
		switch {
		case err == nil && record.LeaseAlive(l, time.Now()):
			id := l.Annotations[record.AnnotationAgentID]
			token, err := i.readToken(ctx, id)
			if err != nil {
				return nil, err
			}
			i.log.Info("attaching to the service's traffic-agent", "agent", id)
			return &agentHandle{id: id, token: token}, nil
		case err == nil:
			i.log.Info("sweeping a dead traffic-agent", "agent", l.Annotations[record.AnnotationAgentID])
			if err := record.CleanupAgent(ctx, c, rec.Namespace, rec.Service, l.Annotations[record.AnnotationAgentID]); err != nil {
				return nil, err
			}
		case apierrors.IsNotFound(err):
			h, err := i.install(ctx)
			if apierrors.IsAlreadyExists(err) {
				continue // another workbench installs it: attach to it
			}
			return h, err
		default:
			return nil, fmt.Errorf("read traffic-agent lease %s/%s: %w", rec.Namespace, rec.Agent, err)
		}
	}
	return nil, fmt.Errorf("could not install or find the traffic-agent of %s/%s; run `tether intercept uninstall` and try again", rec.Namespace, rec.Service)
}

// readToken waits for the agent's Secret (its installer writes it right
// after the agent's Lease).
func (i *Intercept) readToken(ctx context.Context, id string) (string, error) {
	c, rec := i.opts.Client, &i.rec
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		s, err := c.CoreV1().Secrets(rec.Namespace).Get(ctx, rec.Agent, metav1.GetOptions{})
		if err == nil && s.Annotations[record.AnnotationAgentID] == id && len(s.Data[record.SecretTokenKey]) > 0 {
			return string(s.Data[record.SecretTokenKey]), nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("read the traffic-agent's token (secret %s/%s): %w", rec.Namespace, rec.Agent, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the traffic-agent of %s/%s has no token secret %s: %w", rec.Namespace, rec.Service, rec.Agent, errAgentGone)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// install creates the agent's Lease (the lock; AlreadyExists means
// another workbench won), its token Secret, and starts it. The Lease is
// renewed here until the agent's pod is ready and the agent renews it.
func (i *Intercept) install(ctx context.Context) (*agentHandle, error) {
	c, rec := i.opts.Client, &i.rec
	if svc, err := c.CoreV1().Services(rec.Namespace).Get(ctx, rec.Service, metav1.GetOptions{}); err == nil {
		// A takeover without a live agent is a leftover (the agent and
		// every workbench died): undo it before taking over anew.
		if tk, err := record.TakeoverFromService(svc); err != nil {
			return nil, err
		} else if tk != nil {
			i.log.Info("restoring a service left taken over by a dead traffic-agent", "agent", tk.AgentID)
			if err := record.CleanupAgent(ctx, c, rec.Namespace, rec.Service, tk.AgentID); err != nil {
				return nil, err
			}
		}
	}
	id, token := randomHex(8), randomHex(16)
	dur := int32(record.DefaultLeaseSeconds)
	now := metav1.NewMicroTime(time.Now())
	meta := metav1.ObjectMeta{
		Name: rec.Agent, Namespace: rec.Namespace, Labels: record.AgentLabels(rec.Service),
		Annotations: map[string]string{record.AnnotationAgentID: id},
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: meta,
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &rec.Holder, LeaseDurationSeconds: &dur, AcquireTime: &now, RenewTime: &now},
	}
	if _, err := c.CoordinationV1().Leases(rec.Namespace).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		return nil, fmt.Errorf("create traffic-agent lease %s/%s: %w", rec.Namespace, rec.Agent, err)
	}
	h := &agentHandle{id: id, token: token, kill: func() {}}
	secret := &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{record.SecretTokenKey: []byte(token)}}
	_, err := c.CoreV1().Secrets(rec.Namespace).Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// A leftover of an agent killed with its Lease already gone.
		err = c.CoreV1().Secrets(rec.Namespace).Delete(ctx, rec.Agent, metav1.DeleteOptions{})
		if err == nil {
			_, err = c.CoreV1().Secrets(rec.Namespace).Create(ctx, secret, metav1.CreateOptions{})
		}
	}
	if err != nil {
		return h, fmt.Errorf("create traffic-agent secret %s/%s: %w", rec.Namespace, rec.Agent, err)
	}
	r := *rec
	r.AgentID = id
	kill, err := i.opts.Launch(ctx, &r, token)
	if err != nil {
		return h, fmt.Errorf("start traffic-agent: %w", err)
	}
	h.kill = kill
	i.log.Info("traffic-agent started", "agent", id)
	return h, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// connect opens this intercept's session with agent h and waits until
// the Service routes to the agent; the workbench that installed h takes
// the Service over.
func (i *Intercept) connect(ctx context.Context, h *agentHandle) error {
	c, rec := i.opts.Client, &i.rec
	if h.kill != nil {
		// Until the agent runs, its Lease is this workbench's to renew.
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go i.renewUntil(rctx, rec.Agent)
	}
	pod, err := i.waitAgentPod(ctx, h.id)
	if err != nil {
		return err
	}
	var conn net.Conn
	if i.opts.DialAgent != nil {
		conn, err = i.opts.DialAgent(ctx, pod)
	} else {
		conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", pod.Annotations[record.AnnotationControl])
	}
	if err != nil {
		return i.agentErr(ctx, h.id, fmt.Errorf("connect to traffic-agent %s/%s: %w", pod.Namespace, pod.Name, err))
	}
	// No holder in the handshake yet (tunnel.ClientAs): an agent started
	// by an older tether, still serving other intercepts, would read it
	// as part of the intercept's name and never route this one. Agents
	// already refuse names without a Lease and, from a workbench that
	// presents no holder, the takeover of a live session.
	if i.sess, err = tunnel.Client(conn, h.token, rec.Name, i.log); err != nil {
		return i.agentErr(ctx, h.id, err)
	}
	if h.kill != nil {
		fresh, err := c.CoreV1().Services(rec.Namespace).Get(ctx, rec.Service, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := fresh.Annotations[record.Annotation]; ok || !maps.Equal(fresh.Spec.Selector, rec.OriginalSelector) {
			return fmt.Errorf("service %s/%s changed while the intercept was starting; try again", rec.Namespace, rec.Service)
		}
		tk := &record.Takeover{
			Agent: rec.Agent, AgentID: h.id, OriginalSelector: rec.OriginalSelector, AgentLabels: rec.AgentLabels,
			AgentPod: rec.AgentPod, AgentDeployment: rec.AgentDeployment, Created: time.Now().UTC().Truncate(time.Second),
		}
		if _, err := record.TakeOver(ctx, c, fresh, tk); err != nil {
			return fmt.Errorf("take over service %s/%s: %w", rec.Namespace, rec.Service, err)
		}
	}
	if err := i.waitRouted(ctx, h.id, h.kill != nil); err != nil {
		return err
	}
	rec.AgentID = h.id
	return nil
}

// agentErr turns err into errAgentGone when the agent's Lease is gone or
// belongs to another instance, so the caller retries.
func (i *Intercept) agentErr(ctx context.Context, id string, err error) error {
	l, gerr := i.opts.Client.CoordinationV1().Leases(i.rec.Namespace).Get(ctx, i.rec.Agent, metav1.GetOptions{})
	if apierrors.IsNotFound(gerr) || (gerr == nil && l.Annotations[record.AnnotationAgentID] != id) {
		if err == nil {
			return errAgentGone
		}
		return fmt.Errorf("%w: %v", errAgentGone, err)
	}
	return err
}

// renewUntil renews Lease name until ctx ends.
func (i *Intercept) renewUntil(ctx context.Context, name string) {
	t := time.NewTicker(i.opts.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := renewLease(ctx, i.opts.Client, i.rec.Namespace, name); err != nil && ctx.Err() == nil {
			i.log.Warn("renew traffic-agent lease", "lease", name, "err", err)
		}
	}
}

// renewLease sets the Lease's renewTime with a merge patch: one request,
// and it never conflicts with the agent writing the same Lease.
func renewLease(ctx context.Context, c kubernetes.Interface, namespace, name string) error {
	b, err := json.Marshal(map[string]any{"spec": map[string]any{"renewTime": metav1.NewMicroTime(time.Now())}})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = c.CoordinationV1().Leases(namespace).Patch(rctx, name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: "tether-intercept"})
	return err
}

// waitAgentPod returns the ready pod of agent instance id.
func (i *Intercept) waitAgentPod(ctx context.Context, id string) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, i.opts.AgentTimeout)
	defer cancel()
	sel := labels.SelectorFromSet(i.rec.AgentLabels).String()
	last := "no pod yet"
	for n := 0; ; n++ {
		pods, err := i.opts.Client.CoreV1().Pods(i.rec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			last = err.Error()
		} else {
			for _, p := range pods.Items {
				pid := p.Annotations[record.AnnotationAgentID]
				switch {
				case p.DeletionTimestamp != nil || (pid != id && (pid != "" || i.opts.Embedded)):
				case i.opts.DialAgent == nil && p.Annotations[record.AnnotationControl] == "":
					last = "pod " + p.Name + " has no control address yet"
				case !podReady(&p):
					last = "pod " + p.Name + " not ready yet (phase " + string(p.Status.Phase) + containerState(&p) + ")"
				default:
					return &p, nil
				}
			}
		}
		// Every second, check the agent is still the one we wait for.
		if n%5 == 4 {
			if err := i.agentErr(ctx, id, nil); errors.Is(err, errAgentGone) {
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, i.agentErr(context.WithoutCancel(ctx), id, fmt.Errorf("traffic-agent of %s/%s did not come up within %v: %s", i.rec.Namespace, i.rec.Service, i.opts.AgentTimeout, last))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// containerState names why a pod's container is not running, if the
// kubelet said (an image it cannot pull, a crash): on a cluster the agent
// is a real pod, and that is the first thing to know when it does not
// come up.
func containerState(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			return strings.TrimSpace(", container " + cs.Name + ": " + cs.State.Waiting.Reason + " " + cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			return strings.TrimSpace(fmt.Sprintf(", container %s exited %d: %s %s", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason, cs.State.Terminated.Message))
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitRouted returns once the Service is taken over by agent id and its
// EndpointSlices list the agent and nothing else, so Start returning
// means new connections are intercepted.
//
// tookOver says this intercept took the Service over itself: then a
// Service that is no longer taken over was changed back by someone else,
// which is said at once, naming who.
func (i *Intercept) waitRouted(ctx context.Context, id string, tookOver bool) error {
	timeout := 20*time.Second + i.opts.AgentTimeout // an attacher may wait for the installer
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sel := discoveryv1.LabelServiceName + "=" + i.rec.Service
	agentSel := labels.SelectorFromSet(i.rec.AgentLabels).String()
	for n := 0; ; n++ {
		if i.routed(ctx, id, sel, agentSel) {
			return nil
		}
		if tookOver {
			if err := i.revertedBy(ctx, id); err != nil {
				return err
			}
		}
		if n%10 == 9 {
			if err := i.agentErr(ctx, id, nil); errors.Is(err, errAgentGone) {
				return err
			}
		}
		select {
		case <-i.sess.CloseChan():
			return i.agentErr(context.WithoutCancel(ctx), id, errors.New("the traffic-agent closed the session"))
		case <-ctx.Done():
			return i.agentErr(context.WithoutCancel(ctx), id, fmt.Errorf("service %s/%s did not route to the traffic-agent within %v", i.rec.Namespace, i.rec.Service, timeout))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (i *Intercept) routed(ctx context.Context, id, sliceSel, agentSel string) bool {
	c := i.opts.Client
	svc, err := c.CoreV1().Services(i.rec.Namespace).Get(ctx, i.rec.Service, metav1.GetOptions{})
	if err != nil {
		return false
	}
	if tk, err := record.TakeoverFromService(svc); err != nil || tk == nil || tk.AgentID != id {
		return false
	}
	pods, err := c.CoreV1().Pods(i.rec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: agentSel})
	if err != nil {
		return false
	}
	agents := map[string]bool{}
	for _, p := range pods.Items {
		agents[p.Name] = true
	}
	list, err := c.DiscoveryV1().EndpointSlices(i.rec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sliceSel})
	if err != nil {
		return false
	}
	agent, other := false, false
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if ep.TargetRef != nil && agents[ep.TargetRef.Name] {
				agent = true
			} else {
				other = true
			}
		}
	}
	return agent && !other
}

func (i *Intercept) serve() {
	ctx := i.runCtx
	go i.acceptStreams()
	go func() {
		select {
		case <-i.sess.CloseChan():
			// Stop cancels ctx before closing the session: a clean
			// stop, whichever case woke first, not a lost session.
			if ctx.Err() != nil {
				return
			}
			// An agent closes the session when this intercept's Lease
			// was deleted (stop or uninstall from elsewhere): that is
			// not a failure.
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := i.opts.Client.CoordinationV1().Leases(i.rec.Namespace).Get(gctx, i.rec.Lease, metav1.GetOptions{})
			cancel()
			if ctx.Err() != nil {
				// Stop began while the Lease was read.
				return
			}
			if apierrors.IsNotFound(err) {
				i.fail(ErrStopped)
			} else {
				i.fail(errors.New("session with the traffic-agent was lost"))
			}
		case <-ctx.Done():
		}
	}()
	px := outboundProxy(i.rec.Cluster, func(ctx context.Context, addr string) (net.Conn, error) {
		return tunnel.Dial(ctx, i.sess, addr)
	}, i.log)
	i.proxy = &http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = i.proxy.Serve(i.pl) }()
	i.log.Info("intercept running", "service", i.rec.Namespace+"/"+i.rec.Service, "port", i.rec.Port, "to", i.to, "proxy", i.pl.Addr().String())
}

// outboundProxy is the HTTP/CONNECT proxy through which the local process
// reaches cluster (its Services by name), dialing with dial.
func outboundProxy(cluster string, dial func(ctx context.Context, addr string) (net.Conn, error), log *slog.Logger) *goproxy.ProxyHttpServer {
	px := goproxy.NewProxyHttpServer()
	px.Logger = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	px.KeepAcceptEncoding = true
	px.KeepDestinationHeaders = true
	// Proxy: nil so the proxy never sends its dials to HTTP_PROXY (itself).
	px.Tr = &http.Transport{
		Proxy:               nil,
		DialContext:         func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) },
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	px.ConnectDialWithReq = func(req *http.Request, _, addr string) (net.Conn, error) {
		return dial(req.Context(), addr)
	}
	// Both kinds of request that fail say which host could not be reached
	// from the cluster and why, in the same words. CONNECT's answer puts
	// it in the status line too: it is all curl -v shows of a failed
	// tunnel, and the error Go's HTTP client returns.
	px.ConnectionErrHandler = func(w io.Writer, ctx *goproxy.ProxyCtx, err error) {
		addr := ctx.Req.URL.Host
		if _, _, serr := net.SplitHostPort(addr); serr != nil {
			addr = net.JoinHostPort(addr, "80") // as goproxy dials it
		}
		log.Info("outbound CONNECT failed", "host", addr, "err", err)
		msg := unreachable(cluster, addr, err)
		reason := strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return ' '
			}
			return r
		}, msg)
		body := msg + "\n"
		fmt.Fprintf(w, "HTTP/1.1 502 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			reason, len(body), body)
	}
	px.OnResponse().DoFunc(func(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
		if resp != nil || ctx.Error == nil {
			return resp
		}
		log.Info("outbound request failed", "host", ctx.Req.URL.Host, "err", ctx.Error)
		return goproxy.NewResponse(ctx.Req, "text/plain; charset=utf-8", http.StatusBadGateway,
			unreachable(cluster, hostPort(ctx.Req.URL), ctx.Error)+"\n")
	})
	return px
}

// unreachable says that the outbound proxy could not reach addr in
// cluster, and why. tunnel.Dial's errors repeat the address; that part is
// said once here.
func unreachable(cluster, addr string, err error) string {
	why := strings.TrimPrefix(err.Error(), "dial "+addr+" through traffic-agent: ")
	where := "the cluster"
	if cluster != "" {
		where = "cluster " + cluster
	}
	return fmt.Sprintf("tether outbound proxy: cannot reach %s from %s: %s", addr, where, why)
}

// hostPort is u's host with the scheme's port when it names none, as the
// transport dials it.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func (i *Intercept) fail(err error) {
	i.errOnce.Do(func() {
		i.err = err
		close(i.done)
	})
}

func (i *Intercept) renew(ctx context.Context) {
	t := time.NewTicker(i.opts.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := renewLease(ctx, i.opts.Client, i.rec.Namespace, i.rec.Lease)
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
			netpipe.Splice(s, up)
		}()
	}
}

// Record is what the intercept saved on its Lease (plus the agent
// instance serving it).
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

// revertedBy explains a takeover undone by another writer while the
// intercept was starting: the Service's selector is no longer the
// agent's. It names the field manager that last set the selector, which
// is how Kubernetes records who changed a field.
func (i *Intercept) revertedBy(ctx context.Context, id string) error {
	svc, err := i.opts.Client.CoreV1().Services(i.rec.Namespace).Get(ctx, i.rec.Service, metav1.GetOptions{})
	if err != nil {
		return nil // routed will keep trying, and time out with its own message
	}
	if tk, err := record.TakeoverFromService(svc); err == nil && tk != nil && tk.AgentID == id && maps.Equal(svc.Spec.Selector, i.rec.AgentLabels) {
		return nil
	}
	who := "another writer"
	if m, at := selectorManager(svc); m != "" {
		who = fmt.Sprintf("field manager %q at %s", m, at.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("service %s/%s was changed back while the intercept was starting: its selector is %s again, set by %s. "+
		"Something reverts changes to this Service (a GitOps controller with self-heal, an operator): pause it for this Service or have it ignore spec.selector, then start the intercept again. "+
		"tether's own GitOps engine leaves intercepted Services alone",
		i.rec.Namespace, i.rec.Service, labels.SelectorFromSet(svc.Spec.Selector), who)
}

// selectorManager is the field manager that last wrote spec.selector of
// svc, other than tether's intercepts, and when.
func selectorManager(svc *corev1.Service) (string, time.Time) {
	var name string
	var at time.Time
	for _, mf := range svc.ManagedFields {
		if mf.Manager == "tether-intercept" || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(mf.FieldsV1.Raw, &fields) != nil {
			continue
		}
		spec, _ := fields["f:spec"].(map[string]any)
		if _, ok := spec["f:selector"]; !ok {
			continue
		}
		t := time.Time{}
		if mf.Time != nil {
			t = mf.Time.Time
		}
		if name == "" || t.After(at) {
			name, at = mf.Manager, t
		}
	}
	return name, at
}
