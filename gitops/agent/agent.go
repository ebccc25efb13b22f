package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/tether-dev/tether/cluster/kubeapply"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/engine"
	"github.com/tether-dev/tether/gitops/protocol"
)

// Labels and annotations on the spoke's copies of hub Applications.
const (
	// LabelManagedBy marks Applications the principal owns; the agent
	// reverts local edits to their spec.
	LabelManagedBy = "gitops.tether.dev/managed-by"
	// AnnotationSpecChecksum is the checksum of the spec the hub sent.
	AnnotationSpecChecksum = "gitops.tether.dev/spec-checksum"
	fieldManager           = "tether-agent"
)

// Options configure an Agent.
type Options struct {
	// Name is the spoke's name; it must match the certificate's.
	Name string
	// Spoke is the spoke cluster.
	Spoke *rest.Config
	// Principal is the principal's gRPC address (host:port).
	Principal string
	TLS       *tls.Config
	// Namespace holds the spoke's Applications.
	Namespace    string
	CacheDir     string
	Logger       *slog.Logger
	Version      string
	PollInterval time.Duration
}

// Agent connects one spoke to the principal.
type Agent struct {
	opts   Options
	log    *slog.Logger
	dyn    dynamic.Interface
	engine *engine.Engine
	out    *protocol.Outbox

	factory dynamicinformer.DynamicSharedInformerFactory
	apps    cache.SharedIndexInformer

	mu      sync.Mutex
	desired map[string]*v1alpha1.ApplicationSpec // what the hub sent, by name
	// refreshing holds the hub's refresh request in progress per
	// Application; refreshed the ID of the last one carried out, which
	// every status of that Application reports (StatusUpdate.Refreshed).
	refreshing map[string]*hubRefresh
	refreshed  map[string]string
	// connected is closed/replaced per stream; tests and status use it.
	connected bool

	metrics *metrics
	// getenv reads the environment (os.Getenv; tests replace it).
	getenv func(string) string
}

// ClientTLS is the agent's TLS config: its client certificate and the
// workbench CA to verify the principal.
func ClientTLS(caPEM, certPEM, keyPEM []byte, serverName string) (*tls.Config, error) {
	cert, pool, err := protocol.KeyPairAndCA(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("agent TLS: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS13}, nil
}

// ClientTLSFromDir is ClientTLS of the agent's TLS folder
// (protocol.ReadTLSDir).
func ClientTLSFromDir(dir, serverName string) (*tls.Config, error) {
	caPEM, certPEM, keyPEM, err := protocol.ReadTLSDir(dir)
	if err != nil {
		return nil, err
	}
	return ClientTLS(caPEM, certPEM, keyPEM, serverName)
}

// New builds an Agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Spoke == nil || opts.TLS == nil || opts.Name == "" || opts.Principal == "" {
		return nil, errors.New("agent: name, spoke config, principal address and TLS are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Namespace == "" {
		opts.Namespace = "tether-system"
	}
	dyn, err := dynamic.NewForConfig(opts.Spoke)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{Config: opts.Spoke, Namespace: opts.Namespace, CacheDir: filepath.Join(opts.CacheDir, "engine"),
		Logger: opts.Logger.With("component", "engine"), PollInterval: opts.PollInterval})
	if err != nil {
		return nil, err
	}
	return newAgent(opts, dyn, eng)
}

// newAgent is New past the spoke's client and engine, which tests replace
// (eng may be nil there).
func newAgent(opts Options, dyn dynamic.Interface, eng *engine.Engine) (*Agent, error) {
	a := &Agent{opts: opts, log: opts.Logger, dyn: dyn, engine: eng, out: protocol.NewOutbox(), desired: map[string]*v1alpha1.ApplicationSpec{},
		refreshing: map[string]*hubRefresh{}, refreshed: map[string]string{}, getenv: os.Getenv}
	a.metrics = newMetrics(a)
	a.factory = dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, opts.Namespace, nil)
	a.apps = a.factory.ForResource(v1alpha1.ApplicationsResource).Informer()
	_, err := a.apps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { a.localChanged(o, false) },
		UpdateFunc: func(old, o any) { a.localChanged(o, false) },
		DeleteFunc: func(o any) { a.localChanged(o, true) },
	})
	return a, err
}

// Engine is the agent's sync engine.
func (a *Agent) Engine() *engine.Engine { return a.engine }

// Run works until ctx ends: the engine always, the connection whenever the
// principal can be reached.
func (a *Agent) Run(ctx context.Context) error {
	if err := engine.InstallCRD(ctx, a.opts.Spoke); err != nil {
		return err
	}
	a.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), a.apps.HasSynced) {
		return errors.New("agent: Application informer did not sync")
	}
	engineDone := make(chan error, 1)
	go func() { engineDone <- a.engine.Run(ctx) }()
	a.connectLoop(ctx)
	a.factory.Shutdown()
	return <-engineDone
}

// connectLoop dials the principal again and again, waiting as backoff
// says between attempts.
func (a *Agent) connectLoop(ctx context.Context) {
	b := newBackoff(rand.Int64N)
	for ctx.Err() == nil {
		start := time.Now()
		answered, err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := b.after(answered, time.Since(start))
		a.log.Info("principal connection lost; retrying", "err", err, "answered", answered, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Reconnect waits: the first, and the longest that failures make it.
const (
	firstBackoff = 500 * time.Millisecond
	maxBackoff   = 30 * time.Second
	// healthyStream is how long a stream the principal never answered
	// must have lasted to count as working (a spoke with no Applications
	// has nothing for the principal to acknowledge).
	healthyStream = 30 * time.Second
)

// backoff is the wait between attempts to reach the principal: it doubles
// with every attempt that fails, up to maxBackoff, with jitter so a fleet
// does not reconnect in lock step, and starts over after an attempt that
// got a working stream. Without that reset, a principal that goes away
// after serving for a while (a restart, the end of an intercept of the
// principal) would be retried at the step earlier failures had reached,
// up to maxBackoff after it is back.
type backoff struct {
	step time.Duration
	// jitter returns a number in [0, n), as rand.Int64N does.
	jitter func(n int64) int64
}

func newBackoff(jitter func(n int64) int64) *backoff {
	return &backoff{step: firstBackoff, jitter: jitter}
}

// after returns the wait before the next attempt, given whether the
// principal answered the last one's stream and how long that attempt
// lasted: between half and one and a half times the step.
func (b *backoff) after(answered bool, lasted time.Duration) time.Duration {
	if answered || lasted > healthyStream {
		b.step = firstBackoff
	}
	wait := b.step/2 + time.Duration(b.jitter(int64(b.step)))
	b.step = min(b.step*2, maxBackoff)
	return wait
}

// answeredStream notes the first message the principal sends: it has
// read the hello and serves the stream (it acknowledges the statuses
// every stream starts with), so the connection worked.
type answeredStream struct {
	protocol.Stream
	answered atomic.Bool
}

func (s *answeredStream) Recv() (*protocol.Message, error) {
	m, err := s.Stream.Recv()
	if err == nil {
		s.answered.Store(true)
	}
	return m, err
}

// session runs one stream to the principal until it breaks, and says
// whether the principal answered on it.
func (a *Agent) session(ctx context.Context) (answered bool, err error) {
	cc, err := grpc.NewClient(a.opts.Principal,
		grpc.WithTransportCredentials(credentials.NewTLS(a.opts.TLS)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	)
	if err != nil {
		return false, err
	}
	defer cc.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ds, err := protocol.Dial(sctx, cc)
	if err != nil {
		return false, err
	}
	s := &answeredStream{Stream: ds}
	hello := protocol.Hello{Version: a.opts.Version, Mode: protocol.ModeManaged, Apps: map[string]string{}, Restarts: a.restarts(ctx)}
	for _, obj := range a.apps.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		if u.GetLabels()[LabelManagedBy] != "principal" {
			continue
		}
		if app, err := v1alpha1.ApplicationFrom(u); err == nil {
			hello.Apps[app.Name] = protocol.SpecChecksum(&app.Spec)
		}
	}
	if err := s.Send(&protocol.Message{Hello: &hello}); err != nil {
		return false, err
	}
	// The principal may have restarted and lost every status: send them
	// all again (as states, so only the latest of each goes out).
	for _, obj := range a.apps.GetStore().List() {
		a.queueStatus(obj.(*unstructured.Unstructured))
	}
	a.setConnected(true)
	defer a.setConnected(false)
	// Pushes are relayed by the principal to connected agents only: one
	// that arrived while this stream was down would otherwise wait for
	// the next poll (minutes), so fetch everything once now.
	n := a.engine.RefreshAll()
	a.log.Info("connected to principal", "address", a.opts.Principal, "apps", len(hello.Apps), "refreshed", n)
	err = protocol.Serve(sctx, a.metrics.stream(s), a.out, a.handle, a.rejected)
	return s.answered.Load(), err
}

func (a *Agent) setConnected(v bool) {
	a.mu.Lock()
	a.connected = v
	a.mu.Unlock()
}

// Connected reports whether a stream to the principal is up.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connected
}

func (a *Agent) handle(ctx context.Context, m *protocol.Message) error {
	switch {
	case m.App != nil:
		return a.applyApp(ctx, m.App)
	case m.Operation != nil:
		return a.requestOperation(ctx, m.Operation)
	case m.AppRefresh != nil:
		return a.requestRefresh(ctx, m.AppRefresh)
	case m.Refresh != nil:
		n := a.engine.Refresh(m.Refresh.RepoURL)
		a.log.Info("refresh requested by the hub", "repo", m.Refresh.RepoURL, "apps", n)
	}
	return nil
}

func (a *Agent) res() dynamic.ResourceInterface {
	return a.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(a.opts.Namespace)
}

// applyApp makes the spoke's copy match what the hub sent.
func (a *Agent) applyApp(ctx context.Context, up *protocol.AppUpdate) error {
	if up.Deleted {
		a.mu.Lock()
		delete(a.desired, up.Name)
		delete(a.refreshing, up.Name)
		delete(a.refreshed, up.Name)
		a.mu.Unlock()
		err := a.res().Delete(ctx, up.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Application %s: %w", up.Name, err)
		}
		a.log.Info("Application removed by the hub", "app", up.Name)
		return nil
	}
	if up.Spec == nil {
		return nil
	}
	a.mu.Lock()
	before, had := a.desired[up.Name]
	a.desired[up.Name] = up.Spec.DeepCopy()
	a.mu.Unlock()
	err := a.writeSpec(ctx, up.Name, up.Spec)
	if refused(err) {
		// The spoke keeps what it had: reverting local edits to a spec
		// the API server refuses would fail on every event.
		a.mu.Lock()
		if had {
			a.desired[up.Name] = before
		} else {
			delete(a.desired, up.Name)
		}
		a.mu.Unlock()
		a.noteDeliveryError(ctx, up.Name, fmt.Sprintf("the spoke refused the hub's spec (checksum %s): %v", up.Checksum, err))
		return protocol.Reject(err)
	}
	if err == nil {
		a.clearDeliveryError(ctx, up.Name)
	}
	return err
}

// refused says whether err is the spoke API server's final answer for
// what was sent (invalid, denied by admission, too large), as opposed to
// a failure that may pass, after which the message is tried again.
func refused(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsForbidden(err) {
		// Denied by admission (a webhook's default answer is 403, a
		// policy may choose it); a missing RBAC rule, also 403, may be
		// granted soon, so it is tried again.
		msg := err.Error()
		return strings.Contains(msg, "admission webhook") || strings.Contains(msg, "ValidatingAdmissionPolicy")
	}
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err) ||
		apierrors.IsUnsupportedMediaType(err) || apierrors.IsNotAcceptable(err)
}

// noteDeliveryError records on the spoke's copy of app why a message about
// it was refused; the condition goes up to the hub with the status. With
// no spoke copy there is nowhere to put it here, and the principal records
// it on the hub's copy when the nack arrives.
func (a *Agent) noteDeliveryError(ctx context.Context, app, msg string) {
	a.log.Warn("message refused by the spoke's API server; dropped", "app", app, "reason", msg)
	err := a.mutateStatus(ctx, app, func(st *v1alpha1.ApplicationStatus) bool {
		st.SetCondition(v1alpha1.ConditionDeliveryError, msg, metav1.Now())
		return true
	})
	if err != nil && !apierrors.IsNotFound(err) {
		a.log.Warn("could not record the refused message on the Application", "app", app, "err", err)
	}
}

// clearDeliveryError removes the condition once a message about app was
// handled again: the refusal it reported is behind us.
func (a *Agent) clearDeliveryError(ctx context.Context, app string) {
	obj, ok, _ := a.apps.GetStore().GetByKey(a.opts.Namespace + "/" + app)
	if ok {
		if cur, err := v1alpha1.ApplicationFrom(obj.(*unstructured.Unstructured)); err == nil && !cur.Status.RemoveCondition(v1alpha1.ConditionDeliveryError) {
			return // the informer's copy has none: nothing to write
		}
	}
	err := a.mutateStatus(ctx, app, func(st *v1alpha1.ApplicationStatus) bool {
		return st.RemoveCondition(v1alpha1.ConditionDeliveryError)
	})
	if err != nil && !apierrors.IsNotFound(err) {
		a.log.Warn("could not clear the refused-message condition", "app", app, "err", err)
	}
}

// mutateStatus reads app, changes its status, and writes it if mutate
// says it changed.
func (a *Agent) mutateStatus(ctx context.Context, app string, mutate func(*v1alpha1.ApplicationStatus) bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := a.res().Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur, err := v1alpha1.ApplicationFrom(u)
		if err != nil {
			return err
		}
		if !mutate(&cur.Status) {
			return nil
		}
		nu, err := cur.Unstructured()
		if err != nil {
			return err
		}
		_, err = a.res().UpdateStatus(ctx, nu, metav1.UpdateOptions{})
		return err
	})
}

func (a *Agent) writeSpec(ctx context.Context, name string, spec *v1alpha1.ApplicationSpec) error {
	app := &v1alpha1.Application{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: a.opts.Namespace,
			Labels:      map[string]string{LabelManagedBy: "principal"},
			Annotations: map[string]string{AnnotationSpecChecksum: protocol.SpecChecksum(spec)},
		},
		Spec: *spec,
	}
	u, err := kubeapply.FromTyped(app)
	if err != nil {
		return err
	}
	if err := kubeapply.Apply(ctx, a.res(), u, kubeapply.Options{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("apply Application %s: %w", name, err)
	}
	return nil
}

func (a *Agent) requestOperation(ctx context.Context, req *protocol.OperationRequest) error {
	op, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&req.Operation)
	if err != nil {
		return err
	}
	patch, err := (&unstructured.Unstructured{Object: map[string]any{"operation": op}}).MarshalJSON()
	if err != nil {
		return err
	}
	_, err = a.res().Patch(ctx, req.App, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		// The spec travels ahead of its operations, so the spoke's copy
		// went meanwhile (deleted on the hub, or on the spoke and not yet
		// restored). Dropping the operation would leave the hub showing it
		// pending for ever: it is answered as failed, and why.
		a.failOperation(req, fmt.Sprintf("the spoke has no Application %q to run operation %s on", req.App, req.Operation.ID))
		return nil
	}
	if refused(err) {
		// Answered like a missing Application: the hub shows it failed.
		a.failOperation(req, fmt.Sprintf("the spoke refused operation %s: %v", req.Operation.ID, err))
		a.noteDeliveryError(ctx, req.App, fmt.Sprintf("the spoke refused operation %s: %v", req.Operation.ID, err))
		return protocol.Reject(err)
	}
	if err != nil {
		return fmt.Errorf("request operation %s on %s: %w", req.Operation.ID, req.App, err)
	}
	a.clearDeliveryError(ctx, req.App)
	a.log.Info("operation requested by the hub", "app", req.App, "id", req.Operation.ID)
	return nil
}

// failOperation answers an operation the spoke cannot run with a status
// whose operationState is Failed with message, the way the engine answers
// one it could not carry out. It goes as an intent, not a state: a status
// of the Application queued after it (its copy restored) must not replace
// it before it was delivered, and the principal keeps a finished
// operationState until a newer one replaces it.
func (a *Agent) failOperation(req *protocol.OperationRequest, message string) {
	now := metav1.Now()
	st := &v1alpha1.ApplicationStatus{OperationState: &v1alpha1.OperationState{
		Operation: req.Operation, Phase: v1alpha1.OperationFailed, Message: message, StartedAt: now, FinishedAt: &now,
	}}
	a.out.PutIntent(protocol.Message{Status: &protocol.StatusUpdate{Name: req.App, Status: st, At: now.Time}})
	a.log.Warn("operation for an Application the spoke does not have; reported failed", "app", req.App, "id", req.Operation.ID)
}

// hubRefresh is a refresh the hub asked for, carried out by the spoke's
// engine: the agent sets the refresh annotation on the spoke's copy, the
// engine fetches, compares, writes the status and removes the annotation.
// seen is set once an informer event shows the annotation with ID, so
// only a removal after that counts as the answer: events older than the
// agent's own patch can still be on their way when it returns.
type hubRefresh struct {
	id   string
	seen bool
}

// requestRefresh relays a refresh asked on the hub to the spoke's engine,
// the way a user on the spoke asks for one: the refresh annotation.
func (a *Agent) requestRefresh(ctx context.Context, req *protocol.AppRefreshRequest) error {
	// A request sent again (the hub's annotation outlived a stream) runs
	// again: one more fetch, and an ID written twice on the hub (a script
	// writing "now") is never answered by the first one's status.
	// Recorded before the patch, so the informer event that shows it
	// cannot arrive first.
	a.mu.Lock()
	a.refreshing[req.App] = &hubRefresh{id: req.ID}
	a.mu.Unlock()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationRefresh: req.ID}}})
	if err != nil {
		return err
	}
	_, err = a.res().Patch(ctx, req.App, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		a.mu.Lock()
		delete(a.refreshing, req.App)
		a.mu.Unlock()
		a.log.Warn("refresh for an Application the spoke does not have; dropped", "app", req.App, "id", req.ID)
		return nil
	}
	if refused(err) {
		a.mu.Lock()
		delete(a.refreshing, req.App)
		a.mu.Unlock()
		a.noteDeliveryError(ctx, req.App, fmt.Sprintf("the spoke refused refresh %s: %v", req.ID, err))
		return protocol.Reject(err)
	}
	if err != nil {
		return fmt.Errorf("request refresh %s of %s: %w", req.ID, req.App, err)
	}
	// The annotation may have held this value already (a request sent
	// again): then no event comes for it, and the copy in the store is
	// what says it is there.
	if obj, ok, _ := a.apps.GetStore().GetByKey(a.opts.Namespace + "/" + req.App); ok {
		a.noteRefresh(obj.(*unstructured.Unstructured))
	}
	a.clearDeliveryError(ctx, req.App)
	a.log.Info("refresh requested by the hub", "app", req.App, "id", req.ID)
	return nil
}

// noteRefresh follows the hub's refresh of u through the events of its
// spoke copy, and reports whether it has just been carried out: the
// annotation was seen with its ID and is gone now.
func (a *Agent) noteRefresh(u *unstructured.Unstructured) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.refreshing[u.GetName()]
	if r == nil {
		return false
	}
	v, set := u.GetAnnotations()[v1alpha1.AnnotationRefresh]
	switch {
	case set && v == r.id:
		r.seen = true
	case r.seen && !set:
		// The engine removes only the value it served, after writing the
		// status of that reconcile, which began after this request.
		delete(a.refreshing, u.GetName())
		a.refreshed[u.GetName()] = r.id
		return true
	}
	return false
}

// localChanged reacts to the spoke's Applications: status goes up to the
// hub; a spec edited on the spoke is put back to what the hub holds.
func (a *Agent) localChanged(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u.GetLabels()[LabelManagedBy] != "principal" {
		return
	}
	a.mu.Lock()
	want := a.desired[u.GetName()]
	a.mu.Unlock()
	if deleted {
		if want != nil {
			// Deleted on the spoke, still on the hub: restore it.
			go a.restore(u.GetName(), want)
		}
		return
	}
	if want != nil {
		// Checksums, not deep equality: nil and empty fields that a JSON
		// round trip folds together must not look like an edit.
		if app, err := v1alpha1.ApplicationFrom(u); err == nil && protocol.SpecChecksum(&app.Spec) != protocol.SpecChecksum(want) {
			a.log.Info("reverting a local change to a managed Application", "app", u.GetName())
			go a.restore(u.GetName(), want)
		}
	}
	if a.noteRefresh(u) {
		a.log.Info("refresh done", "app", u.GetName())
	}
	a.queueStatus(u)
}

func (a *Agent) restore(name string, spec *v1alpha1.ApplicationSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.writeSpec(ctx, name, spec); err != nil {
		a.log.Warn("could not restore managed Application", "app", name, "err", err)
	}
}

func (a *Agent) queueStatus(u *unstructured.Unstructured) {
	if u.GetLabels()[LabelManagedBy] != "principal" {
		return
	}
	app, err := v1alpha1.ApplicationFrom(u)
	if err != nil {
		return
	}
	a.mu.Lock()
	refreshed := a.refreshed[app.Name]
	if r := a.refreshing[app.Name]; r != nil && r.id == refreshed {
		refreshed = "" // asked again and not done yet
	}
	a.mu.Unlock()
	a.out.PutState("status/"+app.Name, protocol.Message{Status: &protocol.StatusUpdate{Name: app.Name, Status: app.Status.DeepCopy(), Refreshed: refreshed, At: time.Now()}})
}

// rejected notes a message the principal refused: it is dropped, not
// sent again (the principal keeps why on the hub's copy).
func (a *Agent) rejected(m protocol.Message, reason string) {
	kind, name := protocol.Describe(&m)
	a.log.Warn("message refused by the principal; dropped", "kind", kind, "name", name, "reason", reason)
}
