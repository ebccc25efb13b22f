package intercept

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/tunnel"
)

// errAgentGone: the Service's traffic-agent went away (its last intercept
// stopped) while this intercept was attaching; installing a new one is
// the way on.
var errAgentGone = errors.New("the traffic-agent went away while attaching")

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
	return nil, &LeftoverError{Namespace: rec.Namespace, Service: rec.Service, Err: fmt.Errorf("could not install or find the traffic-agent of %s/%s", rec.Namespace, rec.Service)}
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
