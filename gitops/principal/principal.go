package principal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/engine"
	"github.com/tether-dev/tether/gitops/protocol"
)

// Options configure a Principal.
type Options struct {
	// Hub is the hub cluster.
	Hub *rest.Config
	// Listen is the gRPC address agents dial.
	Listen string
	// HTTPListen, if set, serves /healthz, Prometheus metrics (/metrics)
	// and the Git push webhook (POST /webhook/git).
	HTTPListen string
	TLS        *tls.Config
	// Namespace holds the Agent objects.
	Namespace string
	Logger    *slog.Logger
	Version   string
	// MaxStreamAge, when set, ends each agent's connection after about
	// that long (gRPC's max connection age, with a short grace), and the
	// agent dials again. Behind kube-proxy an established connection
	// stays with the pod it was first sent to, even when the Service no
	// longer selects that pod (an intercept took it over); a bounded age
	// is what moves the agents to wherever the Service leads now.
	MaxStreamAge time.Duration
	// HelloTimeout is how long a new stream may take to say Hello before
	// it is closed (10 s if zero): a stream that never does would
	// otherwise hold a handler, and its connection, forever.
	HelloTimeout time.Duration
}

// Waits between attempts to reach the hub at start: doubling from the
// first to the longest.
const (
	firstHubRetry = time.Second
	maxHubRetry   = 30 * time.Second
)

// Principal serves agents.
type Principal struct {
	opts Options
	log  *slog.Logger
	dyn  dynamic.Interface

	factory dynamicinformer.DynamicSharedInformerFactory
	apps    cache.SharedIndexInformer

	mu       sync.Mutex
	outboxes map[string]*protocol.Outbox // per agent; outlives its streams
	sessions map[string]*session
	// sentOps remembers operation IDs queued per agent, so informer
	// resyncs do not queue the same intent twice.
	sentOps map[string]map[string]bool
	// sentRefresh remembers, per agent and Application, the refresh
	// annotation value last queued, for the same reason.
	sentRefresh map[string]map[string]string
	// pendingStatus holds the newest unwritten status per "agent/app".
	pendingStatus map[string]*protocol.StatusUpdate
	writing       map[string]bool
	statusWake    chan struct{}
	// statusRetry holds, per "agent/app" whose last write failed with an
	// error that may pass, how often it failed and when to try again.
	statusRetry map[string]*retryState
	// firstStatusRetry and maxStatusRetry bound the wait between failed
	// writes of one status; tests shorten them.
	firstStatusRetry, maxStatusRetry time.Duration

	// prepareHub installs or checks the CRDs on the hub; Run retries it
	// until it succeeds. Tests replace it.
	prepareHub func(context.Context) error

	metrics *metrics

	grpcAddr net.Addr
	httpAddr net.Addr
	ready    chan struct{}
}

type session struct {
	cancel context.CancelFunc
	// done is closed once the session has ended: its Serve returned, so
	// nothing of it touches the agent's outbox or hands on a message.
	done  chan struct{}
	since metav1.Time
	hello protocol.Hello
	addr  string
}

// New builds a Principal; Run starts it.
func New(opts Options) (*Principal, error) {
	if opts.Hub == nil || opts.TLS == nil {
		return nil, errors.New("principal: hub config and TLS are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Namespace == "" {
		opts.Namespace = "tether-system"
	}
	// client-go's default of 5 requests per second would make a sync of a
	// few hundred resources take minutes (dry run, apply, read back).
	opts.Hub = rest.CopyConfig(opts.Hub)
	if opts.Hub.QPS == 0 {
		opts.Hub.QPS, opts.Hub.Burst = 100, 200
	}
	dyn, err := dynamic.NewForConfig(opts.Hub)
	if err != nil {
		return nil, err
	}
	return newPrincipal(opts, dyn)
}

// newPrincipal is New past the hub's client, which tests replace.
func newPrincipal(opts Options, dyn dynamic.Interface) (*Principal, error) {
	p := &Principal{
		opts: opts, log: opts.Logger, dyn: dyn,
		outboxes: map[string]*protocol.Outbox{}, sessions: map[string]*session{}, sentOps: map[string]map[string]bool{},
		sentRefresh:   map[string]map[string]string{},
		pendingStatus: map[string]*protocol.StatusUpdate{}, writing: map[string]bool{}, statusWake: make(chan struct{}, 1),
		statusRetry: map[string]*retryState{}, firstStatusRetry: 500 * time.Millisecond, maxStatusRetry: 30 * time.Second,
		ready: make(chan struct{}),
	}
	if p.opts.HelloTimeout == 0 {
		p.opts.HelloTimeout = 10 * time.Second
	}
	p.prepareHub = p.installCRDs
	p.metrics = newMetrics(p)
	p.factory = dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	p.apps = p.factory.ForResource(v1alpha1.ApplicationsResource).Informer()
	_, err := p.apps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.appChanged(o, false) },
		UpdateFunc: func(old, o any) { p.appChanged(o, false) },
		DeleteFunc: func(o any) { p.appChanged(o, true) },
	})
	return p, err
}

// Addr is the gRPC address once Run is serving.
func (p *Principal) Addr() net.Addr { <-p.ready; return p.grpcAddr }

// HTTPAddr is the webhook address once Run is serving (nil without one).
func (p *Principal) HTTPAddr() net.Addr { <-p.ready; return p.httpAddr }

// Run serves until ctx ends. A hub that cannot be reached at start is
// waited for, retrying with backoff: agents are served once the hub
// answers (the principal has nothing to give them before).
func (p *Principal) Run(ctx context.Context) error {
	if !p.waitForHub(ctx) {
		return nil
	}
	p.factory.Start(ctx.Done())
	// The informer lists and watches with its own backoff, through any
	// outage of the hub, until it has synced or ctx ends.
	if !cache.WaitForCacheSync(ctx.Done(), p.apps.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("principal: Application informer did not sync")
	}
	ln, err := net.Listen("tcp", p.opts.Listen)
	if err != nil {
		return fmt.Errorf("principal: listen on %s: %w", p.opts.Listen, err)
	}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(p.verifyingTLS())),
		grpc.ForceServerCodec(protocol.Codec{}),
		// Dead agents are noticed within seconds, not at the next write.
		grpc.KeepaliveParams(p.keepalive()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 2 * time.Second, PermitWithoutStream: true}),
	)
	srv.RegisterService(protocol.ServiceDesc(p.serve), nil)
	p.grpcAddr = ln.Addr()
	var hs *http.Server
	if p.opts.HTTPListen != "" {
		hl, err := net.Listen("tcp", p.opts.HTTPListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("principal: listen on %s: %w", p.opts.HTTPListen, err)
		}
		p.httpAddr = hl.Addr()
		hs = &http.Server{Handler: p.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(hl) }()
	}
	close(p.ready)
	p.log.Info("principal serving", "grpc", ln.Addr().String(), "http", addrString(p.httpAddr))
	go p.heartbeat(ctx)
	for range 4 {
		go p.statusWriter(ctx)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errCh:
		return err
	}
	srv.Stop()
	if hs != nil {
		_ = hs.Close()
	}
	p.factory.Shutdown()
	// Mark every agent disconnected: the principal is going away.
	p.mu.Lock()
	names := make([]string, 0, len(p.sessions))
	for n := range p.sessions {
		names = append(names, n)
	}
	p.mu.Unlock()
	for _, n := range names {
		p.touchAgent(context.Background(), n, func(st *v1alpha1.AgentStatus) { st.Connected = false })
	}
	return nil
}

// waitForHub prepares the hub (prepareHub) until that succeeds, waiting
// longer after each failure up to maxHubRetry; false if ctx ended first.
// Exiting instead would leave the hub without a principal until someone
// starts it again, when the hub API server is only restarting.
func (p *Principal) waitForHub(ctx context.Context) bool {
	wait := firstHubRetry
	for {
		err := p.prepareHub(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.log.Warn("hub not ready; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, maxHubRetry)
	}
}

// installCRDs installs the Application and Agent CRDs on the hub, or
// checks they are served where the principal may not install them.
func (p *Principal) installCRDs(ctx context.Context) error {
	err := engine.InstallCRDs(ctx, p.opts.Hub, v1alpha1.ApplicationCRD(), v1alpha1.AgentCRD())
	if err == nil {
		return nil
	}
	// In a pod the principal runs with least privilege and no rights
	// on CRDs: whoever deployed it installed them. Go on if they are
	// served.
	if !apierrors.IsForbidden(err) {
		return err
	}
	if _, lerr := p.dyn.Resource(v1alpha1.AgentsResource).Namespace(p.opts.Namespace).List(ctx, metav1.ListOptions{Limit: 1}); lerr != nil {
		return fmt.Errorf("the Application and Agent CRDs are not installed on the hub and the principal may not install them (%v): install them first", err)
	}
	p.log.Info("CRDs present; not updating them (no rights)", "err", err)
	return nil
}

// verifyingTLS verifies client certificates itself rather than letting
// crypto/tls do it, so that a refused certificate is logged with its
// subject: a handshake failure inside gRPC would otherwise leave no trace.
func (p *Principal) verifyingTLS() *tls.Config {
	cfg := p.opts.TLS.Clone()
	roots := cfg.ClientCAs
	// No CA list in the certificate request: a client holding a foreign
	// certificate would otherwise send none, and there would be nothing to
	// name in the log.
	cfg.ClientCAs = nil
	cfg.ClientAuth = tls.RequireAnyClientCert
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		certs := make([]*x509.Certificate, 0, len(raw))
		for _, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				p.log.Warn("agent refused: unreadable certificate", "err", err)
				return err
			}
			certs = append(certs, c)
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			p.log.Warn("agent refused: certificate not issued by the workbench CA", "subject", certs[0].Subject.String(), "issuer", certs[0].Issuer.String(), "err", err)
			return err
		}
		if _, err := agentName(certs[0]); err != nil {
			p.log.Warn("agent refused", "subject", certs[0].Subject.String(), "err", err)
			return err
		}
		return nil
	}
	return cfg
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (p *Principal) outbox(agent string) *protocol.Outbox {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.outboxes[agent]
	if !ok {
		o = protocol.NewOutbox()
		p.outboxes[agent] = o
	}
	return o
}

// appChanged queues a hub Application change for the agent of its
// namespace: the spec as a state (latest wins), a pending operation and a
// pending refresh as intents (never coalesced).
func (p *Principal) appChanged(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	agent := u.GetNamespace()
	if validation.IsDNS1123Label(agent) != nil {
		return
	}
	app, err := v1alpha1.ApplicationFrom(u)
	if err != nil {
		p.log.Warn("undecodable Application", "namespace", u.GetNamespace(), "name", u.GetName(), "err", err)
		return
	}
	p.queueApp(agent, app, deleted)
}

func (p *Principal) queueApp(agent string, app *v1alpha1.Application, deleted bool) {
	out := p.outbox(agent)
	if deleted {
		p.mu.Lock()
		delete(p.sentRefresh[agent], app.Name)
		p.mu.Unlock()
		out.PutState("app/"+app.Name, protocol.Message{App: &protocol.AppUpdate{Name: app.Name, Deleted: true}})
		return
	}
	spec := app.Spec.DeepCopy()
	out.PutState("app/"+app.Name, protocol.Message{App: &protocol.AppUpdate{Name: app.Name, Spec: spec, Checksum: protocol.SpecChecksum(spec)}})
	p.queueOperation(agent, app)
	p.queueRefresh(agent, app)
}

// queueRefresh sends a refresh asked on the hub (the refresh annotation)
// to the agent, once per annotation value. Nothing on the hub serves the
// annotation: the engine that fetches and compares runs on the spoke, so
// it goes down and its answer comes back (StatusUpdate.Refreshed), after
// which writeStatus clears it.
func (p *Principal) queueRefresh(agent string, app *v1alpha1.Application) {
	id := app.Annotations[v1alpha1.AnnotationRefresh]
	p.mu.Lock()
	if id == "" {
		// Served (or withdrawn): the same value may come again, e.g. the
		// fixed "now" scripts like to write.
		delete(p.sentRefresh[agent], app.Name)
		p.mu.Unlock()
		return
	}
	if p.sentRefresh[agent] == nil {
		p.sentRefresh[agent] = map[string]string{}
	}
	seen := p.sentRefresh[agent][app.Name] == id
	p.sentRefresh[agent][app.Name] = id
	p.mu.Unlock()
	if seen {
		return
	}
	p.outbox(agent).PutIntent(protocol.Message{AppRefresh: &protocol.AppRefreshRequest{App: app.Name, ID: id}})
	p.log.Info("refresh queued", "agent", agent, "app", app.Name, "id", id)
}

func (p *Principal) queueOperation(agent string, app *v1alpha1.Application) {
	op := app.Operation
	if op == nil || op.ID == "" {
		return
	}
	if st := app.Status.OperationState; st != nil && st.Operation.ID == op.ID && st.Phase != v1alpha1.OperationRunning {
		return // done; clearing it is in flight
	}
	p.mu.Lock()
	if p.sentOps[agent] == nil {
		p.sentOps[agent] = map[string]bool{}
	}
	seen := p.sentOps[agent][op.ID]
	p.sentOps[agent][op.ID] = true
	p.mu.Unlock()
	if seen {
		return
	}
	p.outbox(agent).PutIntent(protocol.Message{Operation: &protocol.OperationRequest{App: app.Name, Operation: *op}})
	p.metrics.operationQueued(agent)
	p.log.Info("operation queued", "agent", agent, "app", app.Name, "id", op.ID)
}

// serve handles one agent stream.
func (p *Principal) serve(s protocol.Stream) error {
	ctx := s.Context()
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return errors.New("no peer")
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		p.log.Warn("agent refused: no client certificate", "addr", pr.Addr.String())
		return errors.New("client certificate required")
	}
	// verifyingTLS has checked the chain during the handshake.
	name, err := agentName(info.State.PeerCertificates[0])
	if err == nil && validation.IsDNS1123Label(name) != nil {
		err = fmt.Errorf("agent name %q is not a DNS label", name)
	}
	if err != nil {
		p.log.Warn("agent refused", "addr", pr.Addr.String(), "err", err)
		return err
	}
	first, err := p.awaitHello(s, name, pr.Addr.String())
	if err != nil {
		return err
	}
	if first.Hello == nil {
		return errors.New("first message must be hello")
	}
	hello := *first.Hello
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess := &session{cancel: cancel, done: make(chan struct{}), since: metav1.Now(), hello: hello, addr: pr.Addr.String()}
	defer close(sess.done)
	// The newest stream wins: the old one is a half-dead connection the
	// agent has already given up on. It is ended, and this one starts
	// only once it has: two sessions of one agent at once would share its
	// outbox, and the old one's late handling could overwrite what the
	// new one recorded.
	p.mu.Lock()
	old := p.sessions[name]
	p.sessions[name] = sess
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		current := p.sessions[name] == sess
		if current {
			delete(p.sessions, name)
		}
		p.mu.Unlock()
		if !current {
			// Replaced: the new stream keeps the Agent connected.
			p.log.Info("agent stream replaced by a newer one", "agent", name, "addr", sess.addr)
			return
		}
		p.touchAgent(context.WithoutCancel(ctx), name, func(st *v1alpha1.AgentStatus) {
			st.Connected = false
			st.LastSeen = ptrNow()
		})
		p.log.Info("agent disconnected", "agent", name)
	}()
	if old != nil {
		old.cancel()
		<-old.done
	}
	if sctx.Err() != nil {
		// Replaced (or gone) while waiting for the one before.
		return nil
	}
	// Re-queue pending operations and refreshes below: the last stream
	// may have ended before the agent acted on them.
	p.mu.Lock()
	delete(p.sentOps, name)
	delete(p.sentRefresh, name)
	p.mu.Unlock()
	p.log.Info("agent connected", "agent", name, "addr", sess.addr, "version", hello.Version, "apps", len(hello.Apps), "restarts", hello.Restarts)
	p.metrics.connected(name)
	p.resync(name, hello)
	p.updateAgent(sctx, name, func(st *v1alpha1.AgentStatus) {
		st.Connected, st.Version, st.Address, st.Restarts = true, hello.Version, sess.addr, hello.Restarts
		st.ConnectedSince, st.LastSeen = &sess.since, ptrNow()
	})
	return protocol.Serve(sctx, p.metrics.stream(name, s), p.outbox(name), func(ctx context.Context, m *protocol.Message) error { return p.handle(ctx, name, m) },
		func(m protocol.Message, reason string) { p.rejected(name, m, reason) })
}

// awaitHello reads a new stream's first message, waiting at most
// HelloTimeout. On time out the handler returns, which closes the stream
// (and ends the Recv left waiting).
func (p *Principal) awaitHello(s protocol.Stream, agent, addr string) (*protocol.Message, error) {
	type recv struct {
		m   *protocol.Message
		err error
	}
	got := make(chan recv, 1)
	go func() {
		m, err := s.Recv()
		got <- recv{m, err}
	}()
	t := time.NewTimer(p.opts.HelloTimeout)
	defer t.Stop()
	select {
	case r := <-got:
		return r.m, r.err
	case <-t.C:
		p.log.Warn("agent stream closed: no hello in time", "agent", agent, "addr", addr, "timeout", p.opts.HelloTimeout)
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %s", p.opts.HelloTimeout)
	}
}

// resync queues whatever differs between the hub and what the agent said
// it holds, plus every pending operation and refresh.
func (p *Principal) resync(agent string, hello protocol.Hello) {
	hub := map[string]bool{}
	for _, obj := range p.apps.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		if u.GetNamespace() != agent {
			continue
		}
		app, err := v1alpha1.ApplicationFrom(u)
		if err != nil {
			continue
		}
		hub[app.Name] = true
		if hello.Apps[app.Name] != protocol.SpecChecksum(&app.Spec) {
			p.queueApp(agent, app, false)
		} else {
			p.queueOperation(agent, app)
			p.queueRefresh(agent, app)
		}
	}
	for name := range hello.Apps {
		if !hub[name] {
			p.outbox(agent).PutState("app/"+name, protocol.Message{App: &protocol.AppUpdate{Name: name, Deleted: true}})
		}
	}
}

// handle takes one message from an agent. Only the agent's own hub
// namespace is ever touched: names are resolved inside it.
//
// Statuses are states: the latest per Application is kept and written by
// the status writers, and the message is acknowledged once recorded. A
// principal that dies before writing loses nothing, because every agent
// sends all its statuses again on its next stream.
func (p *Principal) handle(_ context.Context, agent string, m *protocol.Message) error {
	if m.Status == nil || m.Status.Deleted || m.Status.Status == nil {
		return nil
	}
	key := agent + "/" + m.Status.Name
	st := m.Status
	p.mu.Lock()
	if older := p.pendingStatus[key]; older != nil && st.Status.OperationState == nil && finished(older.Status.OperationState) {
		// A finished operation's result stays until a newer one replaces
		// it (writeStatus): a status without one, coalescing with an
		// unwritten one that has it, must not swallow it.
		c := *st
		c.Status = st.Status.DeepCopy()
		c.Status.OperationState = older.Status.OperationState.DeepCopy()
		st = &c
	}
	p.pendingStatus[key] = st
	p.mu.Unlock()
	select {
	case p.statusWake <- struct{}{}:
	default:
	}
	return nil
}

// retryState is the backoff of one Application's status writes.
type retryState struct {
	failures int
	at       time.Time
}

// statusWriter writes pending statuses, newest per Application, until ctx
// ends. Several run, so one slow write does not hold up the fleet.
//
// A write that fails with an error that may pass (the hub's API server
// unavailable, a timeout) is tried again after a wait that doubles, from
// firstStatusRetry to maxStatusRetry, per Application; a status the hub
// refuses for good is not retried (writeStatus records why instead).
func (p *Principal) statusWriter(ctx context.Context) {
	for {
		p.mu.Lock()
		var key string
		var st *protocol.StatusUpdate
		now := time.Now()
		for k, v := range p.pendingStatus {
			// One writer per Application at a time: two in flight could
			// land out of order and leave an older status on the hub.
			if p.writing[k] {
				continue
			}
			if r := p.statusRetry[k]; r != nil && now.Before(r.at) {
				continue
			}
			key, st = k, v
			delete(p.pendingStatus, k)
			p.writing[k] = true
			break
		}
		p.mu.Unlock()
		if st == nil {
			select {
			case <-ctx.Done():
				return
			case <-p.statusWake:
			}
			continue
		}
		agent, name, _ := strings.Cut(key, "/")
		err := p.writeStatus(ctx, agent, name, st.Status)
		if err == nil && st.Refreshed != "" {
			err = p.clearRefresh(ctx, agent, name, st.Refreshed)
		}
		p.metrics.statusWritten(agent, name, st, err)
		p.mu.Lock()
		delete(p.writing, key)
		_, newer := p.pendingStatus[key]
		var wait time.Duration
		if err != nil && ctx.Err() == nil {
			r := p.statusRetry[key]
			if r == nil {
				r = &retryState{}
				p.statusRetry[key] = r
			}
			wait = p.firstStatusRetry << min(r.failures, 16)
			wait = min(wait, p.maxStatusRetry)
			r.failures++
			r.at = time.Now().Add(wait)
			if !newer {
				p.pendingStatus[key] = st
			}
		} else {
			delete(p.statusRetry, key)
		}
		p.mu.Unlock()
		if wait > 0 {
			p.log.Warn("could not write status to the hub; will retry", "agent", agent, "app", name, "err", err, "in", wait)
			time.AfterFunc(wait, p.wakeStatusWriters)
		} else if newer {
			// A newer status waited for this write; make sure a writer
			// looks again.
			p.wakeStatusWriters()
		}
	}
}

func (p *Principal) wakeStatusWriters() {
	select {
	case p.statusWake <- struct{}{}:
	default:
	}
}

// writeStatus writes an agent's status onto the hub Application, starting
// from the informer's copy (no read per write) and re-reading only on a
// conflict.
//
// A status over maxStatusBytes, or one the hub says is too large, is
// shortened (fitStatus) rather than refused for ever; a status the hub
// refuses for good (invalid) is not retried: the hub's copy keeps its
// last status with a DeliveryError condition that says why.
func (p *Principal) writeStatus(ctx context.Context, agent, name string, st *v1alpha1.ApplicationStatus) error {
	err := p.updateHubStatus(ctx, agent, name, st, maxStatusBytes)
	if tooLarge(err) {
		p.log.Warn("status too large for the hub; writing a shorter one", "agent", agent, "app", name, "err", err)
		err = p.updateHubStatus(ctx, agent, name, st, maxStatusBytes/8)
	}
	if refusedByHub(err) {
		p.log.Warn("status refused by the hub; dropped", "agent", agent, "app", name, "err", err)
		p.noteHubCondition(ctx, agent, name, fmt.Sprintf("the hub refused the spoke's status: %v", err))
		return nil
	}
	if err != nil {
		return err
	}
	// A finished operation is cleared on the hub, guarded by its ID so a
	// newer request is never lost.
	res := p.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(agent)
	if os := st.OperationState; os != nil && os.Operation.ID != "" && os.Phase != v1alpha1.OperationRunning {
		id, _ := json.Marshal(os.Operation.ID)
		patch := fmt.Sprintf(`[{"op":"test","path":"/operation/id","value":%s},{"op":"remove","path":"/operation"}]`, id)
		_, err := res.Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) && !isUnprocessable(err) {
			return fmt.Errorf("clear operation of %s/%s: %w", agent, name, err)
		}
	}
	return nil
}

// updateHubStatus writes st, shortened to budget bytes, as the status of
// the hub's copy.
func (p *Principal) updateHubStatus(ctx context.Context, agent, name string, st *v1alpha1.ApplicationStatus, budget int) error {
	res := p.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(agent)
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var u *unstructured.Unstructured
		if obj, ok, _ := p.apps.GetStore().GetByKey(agent + "/" + name); first && ok {
			u = obj.(*unstructured.Unstructured)
		} else {
			var err error
			if u, err = res.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		cached := first
		first = false
		app, err := v1alpha1.ApplicationFrom(u)
		if err != nil {
			return err
		}
		// The last finished operation's result stays on the hub until a
		// newer one replaces it: a spoke whose copy of the Application was gone
		// answers an operation as failed, and the statuses of the copy
		// restored after carry no operationState.
		want := st
		if st.OperationState == nil && finished(app.Status.OperationState) {
			want = st.DeepCopy()
			want.OperationState = app.Status.OperationState
		}
		// Only a fresh read may say "nothing to write": the informer's copy
		// can predate our own last write and look equal when it is not.
		if !cached && reflect.DeepEqual(&app.Status, want) {
			return nil
		}
		app.Status = *fitStatus(want, budget)
		nu, err := app.Unstructured()
		if err != nil {
			return err
		}
		_, err = res.UpdateStatus(ctx, nu, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		p.log.Info("status for an Application the hub does not have", "agent", agent, "app", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("write status of %s/%s: %w", agent, name, err)
	}
	return nil
}

// noteHubCondition records on the hub's copy of app, keeping its status
// otherwise, that a message about it was refused and why.
func (p *Principal) noteHubCondition(ctx context.Context, agent, app, msg string) {
	res := p.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(agent)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := res.Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur, err := v1alpha1.ApplicationFrom(u)
		if err != nil {
			return err
		}
		cur.Status.SetCondition(v1alpha1.ConditionDeliveryError, msg, metav1.Now())
		nu, err := cur.Unstructured()
		if err != nil {
			return err
		}
		_, err = res.UpdateStatus(ctx, nu, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		p.log.Warn("could not record a refused message on the hub's Application", "agent", agent, "app", app, "err", err)
	}
}

// maxStatusBytes bounds the status written for one Application: etcd
// refuses an object over 1.5 MiB by default, and spec, metadata and
// managed fields need room too.
const maxStatusBytes = 1 << 20

// tooLarge says whether err is the hub saying an object is too large
// (the API server's limit on a request, or etcd's on a value).
func tooLarge(err error) bool {
	if err == nil {
		return false
	}
	return apierrors.IsRequestEntityTooLargeError(err) || strings.Contains(err.Error(), "request is too large")
}

// refusedByHub says whether err is the hub's final answer for a status:
// writing it again cannot succeed.
func refusedByHub(err error) bool {
	return err != nil && (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || isUnprocessable(err))
}

// fitStatus returns st if its JSON is within budget bytes, or else a copy
// shortened to fit: long messages cut, then resources and history beyond
// what fits left out, with a StatusTruncated condition saying so. The
// spoke keeps the whole status; the hub shows what it can hold.
func fitStatus(st *v1alpha1.ApplicationStatus, budget int) *v1alpha1.ApplicationStatus {
	size := jsonSize(st)
	if size <= budget {
		return st
	}
	// Room for the condition added below.
	const reserve = 1024
	c := st.DeepCopy()
	for i := range c.Conditions {
		c.Conditions[i].Message = cut(c.Conditions[i].Message, 1024)
	}
	c.Health.Message = cut(c.Health.Message, 1024)
	if c.OperationState != nil {
		c.OperationState.Message = cut(c.OperationState.Message, 4096)
	}
	for i := range c.Resources {
		if h := c.Resources[i].Health; h != nil {
			h.Message = cut(h.Message, 256)
		}
	}
	total, kept := len(c.Resources), len(c.Resources)
	if jsonSize(c) > budget-reserve {
		rs := c.Resources
		c.Resources = nil
		used := jsonSize(c)
		kept = 0
		for _, r := range rs {
			n := jsonSize(&r) + 1
			if used+n > budget-reserve {
				break
			}
			used += n
			kept++
		}
		c.Resources = rs[:kept]
	}
	if n := len(c.History); n > 1 && jsonSize(c) > budget-reserve {
		c.History = c.History[n-1:]
	}
	c.SetCondition(v1alpha1.ConditionStatusTruncated, fmt.Sprintf(
		"the spoke's status is %d bytes, more than the %d the hub stores: %d of %d resources shown, long messages cut; the spoke's copy has all of it",
		size, budget, kept, total), metav1.Now())
	return c
}

func jsonSize(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

// cut shortens s to at most n bytes, saying it did.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "… (cut)"
	return strings.ToValidUTF8(s[:n-len(more)], "") + more
}

// finished says whether st is the result of an operation that ended.
func finished(st *v1alpha1.OperationState) bool {
	return st != nil && st.Phase != v1alpha1.OperationRunning
}

func isUnprocessable(err error) bool {
	var se apierrors.APIStatus
	return errors.As(err, &se) && se.Status().Code == http.StatusUnprocessableEntity
}

// clearRefresh removes the hub's refresh annotation once the agent has
// answered it (its status, carrying id, is written). The patch is guarded
// by the value, so a newer request made meanwhile stays and goes down.
func (p *Principal) clearRefresh(ctx context.Context, agent, name, id string) error {
	if obj, ok, _ := p.apps.GetStore().GetByKey(agent + "/" + name); ok {
		if v, set := obj.(*unstructured.Unstructured).GetAnnotations()[v1alpha1.AnnotationRefresh]; !set || v != id {
			// Already cleared, or a newer request. The informer may lag
			// behind a value just set, but then the answer to it is yet
			// to come and will be checked again.
			return nil
		}
	}
	res := p.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(agent)
	_, err := res.Patch(ctx, name, types.JSONPatchType, refreshClearPatch(id), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) && !isUnprocessable(err) {
		return fmt.Errorf("clear the refresh annotation of %s/%s: %w", agent, name, err)
	}
	if err == nil {
		p.log.Info("refresh answered", "agent", agent, "app", name, "id", id)
	}
	return nil
}

// refreshClearPatch removes the refresh annotation if, and only if, it
// still holds id.
func refreshClearPatch(id string) []byte {
	v, _ := json.Marshal(id)
	path := "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(v1alpha1.AnnotationRefresh)
	return []byte(fmt.Sprintf(`[{"op":"test","path":%q,"value":%s},{"op":"remove","path":%q}]`, path, v, path))
}

// heartbeat refreshes the Agent objects of connected agents.
func (p *Principal) heartbeat(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		names := make([]string, 0, len(p.sessions))
		for n := range p.sessions {
			names = append(names, n)
		}
		p.mu.Unlock()
		for _, n := range names {
			p.touchAgent(ctx, n, func(st *v1alpha1.AgentStatus) { st.Connected, st.LastSeen = true, ptrNow() })
		}
	}
}

// updateAgent creates or updates the agent's Agent object on the hub.
func (p *Principal) updateAgent(ctx context.Context, name string, mutate func(*v1alpha1.AgentStatus)) {
	p.writeAgent(ctx, name, true, mutate)
}

// touchAgent updates the agent's Agent object if there is one, and never
// creates it: only a new stream does (updateAgent). When a spoke leaves
// the fleet its clean-up deletes the Agent object while the agent's stream
// may still be open or ending (on kind until its cluster is gone), and a
// heartbeat or the disconnect must not bring the object back.
func (p *Principal) touchAgent(ctx context.Context, name string, mutate func(*v1alpha1.AgentStatus)) {
	p.writeAgent(ctx, name, false, mutate)
}

func (p *Principal) writeAgent(ctx context.Context, name string, create bool, mutate func(*v1alpha1.AgentStatus)) {
	res := p.dyn.Resource(v1alpha1.AgentsResource).Namespace(p.opts.Namespace)
	apps := 0
	for _, obj := range p.apps.GetStore().List() {
		if obj.(*unstructured.Unstructured).GetNamespace() == name {
			apps++
		}
	}
	pending := p.outbox(name).Len()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := res.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && !create {
			return nil
		}
		if apierrors.IsNotFound(err) {
			a := &v1alpha1.Agent{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Agent"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.opts.Namespace},
				Spec:       v1alpha1.AgentSpec{Mode: protocol.ModeManaged},
			}
			m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
			u, err = res.Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{})
		}
		if err != nil {
			return err
		}
		var a v1alpha1.Agent
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &a); err != nil {
			return err
		}
		mutate(&a.Status)
		a.Status.Applications, a.Status.Pending = apps, pending
		p.metrics.agentStatus(name, &a.Status)
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&a)
		if err != nil {
			return err
		}
		_, err = res.UpdateStatus(ctx, &unstructured.Unstructured{Object: m}, metav1.UpdateOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil {
		p.log.Warn("could not update Agent object", "agent", name, "err", err)
	}
}

// NotifyPush tells the agents whose Applications use repo that it changed.
// repo is a clone URL or a repository name as the Git server reports it.
func (p *Principal) NotifyPush(repo string) int {
	perAgent := map[string]map[string]bool{}
	for _, obj := range p.apps.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		url, _, _ := unstructured.NestedString(u.Object, "spec", "source", "repoURL")
		if !sameRepo(url, repo) {
			continue
		}
		if perAgent[u.GetNamespace()] == nil {
			perAgent[u.GetNamespace()] = map[string]bool{}
		}
		perAgent[u.GetNamespace()][url] = true
	}
	n := 0
	for agent, urls := range perAgent {
		for url := range urls {
			p.outbox(agent).PutIntent(protocol.Message{Refresh: &protocol.RefreshRequest{RepoURL: url}})
			n++
		}
	}
	return n
}

func sameRepo(url, repo string) bool {
	if url == repo {
		return true
	}
	name := strings.TrimSuffix(strings.Trim(repo, "/"), ".git")
	return strings.HasSuffix(strings.TrimSuffix(url, ".git"), "/"+name)
}

func (p *Principal) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", p.metrics.handler())
	mux.HandleFunc("POST /webhook/git", func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Repo string `json:"repo"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&ev); err != nil || ev.Repo == "" {
			http.Error(w, "want a JSON push event with a repo", http.StatusBadRequest)
			return
		}
		n := p.NotifyPush(ev.Repo)
		p.log.Info("push received", "repo", ev.Repo, "refreshes", n)
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

func ptrNow() *metav1.Time { t := metav1.Now(); return &t }

// keepalive notices dead agents within seconds, not at the next write,
// and bounds a connection's age when MaxStreamAge asks for it.
func (p *Principal) keepalive() keepalive.ServerParameters {
	kp := keepalive.ServerParameters{Time: 5 * time.Second, Timeout: 5 * time.Second}
	if p.opts.MaxStreamAge > 0 {
		kp.MaxConnectionAge = p.opts.MaxStreamAge
		// The stream is long-lived: without a grace it would never end.
		kp.MaxConnectionAgeGrace = 2 * time.Second
	}
	return kp
}

// rejected notes a message the agent refused: it is dropped, not sent
// again. The agent records why on its copy of the Application, whose
// status comes up here; the hub's copy is told as well, because there may
// be no spoke copy to carry it (a new Application the spoke refused).
func (p *Principal) rejected(agent string, m protocol.Message, reason string) {
	kind, name := protocol.Describe(&m)
	p.log.Warn("message refused by the agent; dropped", "agent", agent, "kind", kind, "name", name, "reason", reason)
	if m.App == nil && m.Operation == nil && m.AppRefresh == nil {
		return
	}
	// The receiver must not wait on the hub.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.noteHubCondition(ctx, agent, name, fmt.Sprintf("the spoke refused the hub's %s: %s", kind, reason))
	}()
}
