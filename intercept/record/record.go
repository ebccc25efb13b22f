package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

const (
	// Annotation holds a Takeover as JSON on a taken-over Service, and a
	// Record as JSON on an intercept's Lease.
	Annotation = "tether.dev/intercept"
	// LabelIntercept names the intercept a Lease belongs to; agent
	// objects do not carry it.
	LabelIntercept = "tether.dev/intercept"
	// LabelService names the Service an intercept or agent object is for.
	// It is also the agent pods' selector label, so it must stay short:
	// Service names are DNS labels (at most 63 characters), as label
	// values must be.
	LabelService = "tether.dev/service"
	// LabelComponent marks traffic-agent pods, Deployments, Secrets and
	// Leases, so uninstall finds everything even without a Service
	// annotation.
	LabelComponent = "app.kubernetes.io/component"
	ComponentAgent = "traffic-agent"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "tether"
	// AnnotationControl on the agent's pod (embedded) is its loopback
	// control address.
	AnnotationControl = "tether.dev/control-address"
	// AnnotationAgentID names the agent instance an object belongs to, so
	// an agent that was replaced never deletes its successor's objects.
	AnnotationAgentID = "tether.dev/agent-id"
	// AnnotationCounters on the agent's Lease holds per-intercept
	// counters as JSON (map of intercept name to Counters).
	AnnotationCounters = "tether.dev/counters"
	// SecretTokenKey is the key of the session token in the agent Secret.
	SecretTokenKey      = "token"
	DefaultLeaseSeconds = 10
)

// Port is one Service port as the traffic-agent must serve it.
type Port struct {
	Name string `json:"name,omitempty"`
	Port int32  `json:"port"`
	// TargetPort is the container port number the endpoints use;
	// TargetPortName is set when the Service names its target port, so
	// the agent's pod declares a port of that name.
	TargetPort     int32  `json:"targetPort"`
	TargetPortName string `json:"targetPortName,omitempty"`
}

// Record describes one intercept. It is stored on the intercept's Lease;
// the agent fields describe the (shared) traffic-agent of the Service, and
// a launcher receives the Record of the intercept that starts the agent.
type Record struct {
	Name      string `json:"name"`
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	// Port is the intercepted Service port; the agent forwards the other
	// ports (and this one while no intercept routes it) to the original
	// pods.
	Port    int32             `json:"port"`
	Ports   []Port            `json:"ports"`
	Headers map[string]string `json:"headers,omitempty"`
	// OriginalSelector is the Service's selector before the takeover.
	OriginalSelector map[string]string `json:"originalSelector"`
	AgentLabels      map[string]string `json:"agentLabels"`
	Lease            string            `json:"lease"`
	// Agent names the agent's Lease and Secret (and its Pod or
	// Deployment); AgentID is the instance serving the intercept.
	Agent           string    `json:"agent,omitempty"`
	AgentID         string    `json:"agentID,omitempty"`
	AgentPod        string    `json:"agentPod,omitempty"`
	AgentDeployment string    `json:"agentDeployment,omitempty"`
	Holder          string    `json:"holder"`
	Created         time.Time `json:"created"`
}

// Global reports whether every connection is intercepted (no headers).
func (r *Record) Global() bool { return len(r.Headers) == 0 }

// Takeover is what a taken-over Service carries: enough to put it back
// and to know which agent instance took it.
type Takeover struct {
	Agent            string            `json:"agent,omitempty"`
	AgentID          string            `json:"agentID,omitempty"`
	OriginalSelector map[string]string `json:"originalSelector"`
	AgentLabels      map[string]string `json:"agentLabels"`
	AgentPod         string            `json:"agentPod,omitempty"`
	AgentDeployment  string            `json:"agentDeployment,omitempty"`
	Created          time.Time         `json:"created"`
}

// Counters are what the agent counts per intercept.
type Counters struct {
	// Connections carried to the workbench (TCP connections of a global
	// intercept, HTTP connections opened to the laptop for a personal one).
	Connections int64 `json:"connections"`
	// Requests matched by a personal intercept's headers.
	Requests int64 `json:"requests"`
}

// AgentName names the agent of service: its Lease, Secret, Pod or
// Deployment.
func AgentName(service string) string { return "tether-agent-" + service }

// LeaseName names the Lease of intercept name.
func LeaseName(name string) string { return "tether-intercept-" + name }

// Labels are put on an intercept's Lease.
func Labels(name, service string) map[string]string {
	return map[string]string{LabelIntercept: name, LabelService: service, LabelComponent: ComponentAgent, LabelManagedBy: ManagedBy}
}

// AgentLabels are put on the agent's objects; on its pods they are the
// Service's selector during the takeover.
func AgentLabels(service string) map[string]string {
	return map[string]string{LabelService: service, LabelComponent: ComponentAgent, LabelManagedBy: ManagedBy}
}

const (
	// ComponentSelector selects every intercept object in a cluster.
	ComponentSelector = LabelComponent + "=" + ComponentAgent + "," + LabelManagedBy + "=" + ManagedBy
	// InterceptSelector selects intercept Leases.
	InterceptSelector = ComponentSelector + "," + LabelIntercept
	// AgentSelector selects agent objects (Leases, Secrets, pods).
	AgentSelector = ComponentSelector + ",!" + LabelIntercept
)

// ServiceInterceptSelector selects the intercept Leases of one Service.
func ServiceInterceptSelector(service string) string {
	return InterceptSelector + "," + LabelService + "=" + service
}

// ServiceAgentSelector selects the agent objects of one Service.
func ServiceAgentSelector(service string) string {
	return AgentSelector + "," + LabelService + "=" + service
}

// TakeoverFromService returns the Takeover on svc, if any.
func TakeoverFromService(svc *corev1.Service) (*Takeover, error) {
	v, ok := svc.Annotations[Annotation]
	if !ok {
		return nil, nil
	}
	var t Takeover
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		return nil, &UnreadableError{Namespace: svc.Namespace, Service: svc.Name, Err: err}
	}
	return &t, nil
}

// FromLease returns the Record an intercept's Lease carries.
func FromLease(l *coordinationv1.Lease) (*Record, error) {
	v, ok := l.Annotations[Annotation]
	if !ok {
		return nil, fmt.Errorf("lease %s/%s carries no %s annotation", l.Namespace, l.Name, Annotation)
	}
	var r Record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("lease %s/%s: unreadable %s annotation: %w", l.Namespace, l.Name, Annotation, err)
	}
	return &r, nil
}

// CountersFromLease reads the agent Lease's counters; unreadable ones are
// reported as none (they are informative only).
func CountersFromLease(l *coordinationv1.Lease) map[string]Counters {
	out := map[string]Counters{}
	if v := l.Annotations[AnnotationCounters]; v != "" {
		_ = json.Unmarshal([]byte(v), &out)
	}
	return out
}

// TakeOver points svc at the agent and saves t on it, atomically with
// respect to other writers (the update carries svc's resourceVersion).
func TakeOver(ctx context.Context, c kubernetes.Interface, svc *corev1.Service, t *Takeover) (*corev1.Service, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	s := svc.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[Annotation] = string(b)
	// The selector is the intercept's while the agent's Lease is renewed:
	// a GitOps engine with self-heal (tether's own) leaves it alone until
	// then, and puts Git's back the moment the Lease lapses.
	s.Annotations[v1alpha1.AnnotationLeasedFields] = v1alpha1.LeasedFields{Lease: t.Agent, Fields: []string{"spec.selector"}}.Value()
	s.Spec.Selector = maps.Clone(t.AgentLabels)
	return c.CoreV1().Services(s.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: "tether-intercept"})
}

// Restore puts the Service back as it was before the takeover by agent
// instance agentID ("" for any: uninstall, a sweep of a dead agent). It
// does nothing (and reports false) when the Service is gone, not taken
// over, or taken over by another instance, so the workbench, the agent and
// a sweep may all call it.
func Restore(ctx context.Context, c kubernetes.Interface, namespace, service, agentID string) (bool, error) {
	restored := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		restored = false
		svc, err := c.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		t, err := TakeoverFromService(svc)
		if err != nil || t == nil || (agentID != "" && t.AgentID != "" && t.AgentID != agentID) {
			return err
		}
		svc.Spec.Selector = maps.Clone(t.OriginalSelector)
		delete(svc.Annotations, Annotation)
		delete(svc.Annotations, v1alpha1.AnnotationLeasedFields)
		if len(svc.Annotations) == 0 {
			svc.Annotations = nil
		}
		if _, err := c.CoreV1().Services(namespace).Update(ctx, svc, metav1.UpdateOptions{FieldManager: "tether-intercept"}); err != nil {
			return err
		}
		restored = true
		return nil
	})
	return restored, err
}

// LeaseAlive reports whether l was renewed within its duration, by the
// clock of the caller. The agent does not use it for intercept Leases (it
// measures renewals on its own clock); sweeps and list do.
func LeaseAlive(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil {
		return false
	}
	d := DefaultLeaseSeconds
	if l.Spec.LeaseDurationSeconds != nil {
		d = int(*l.Spec.LeaseDurationSeconds)
	}
	return l.Spec.RenewTime.Add(time.Duration(d) * time.Second).After(now)
}

// Cleanup removes intercept rec's own object, its Lease. The agent drops
// the intercept's routes when it sees the Lease go; the Service and the
// agent are the last intercept's to remove (see CleanupAgent).
func Cleanup(ctx context.Context, c kubernetes.Interface, rec *Record) error {
	if rec.Lease == "" {
		return nil
	}
	err := c.CoordinationV1().Leases(rec.Namespace).Delete(ctx, rec.Lease, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete lease %s/%s of intercept %s: %w", rec.Namespace, rec.Lease, rec.Name, err)
	}
	return nil
}

// CleanupAgent restores service (if agent instance agentID took it over)
// and deletes that instance's Pods, Deployments, Secret and, last, its
// Lease, which is the lock a new agent is installed under. agentID ""
// removes any instance. Missing objects are not errors.
func CleanupAgent(ctx context.Context, c kubernetes.Interface, namespace, service, agentID string) error {
	return cleanupAgent(ctx, c, namespace, service, agentID, false)
}

// CleanupAgentInPod is CleanupAgent as the traffic-agent runs it from its
// own pod when it ends: it leaves the agent's pods alone. Deleting its own
// pod first would have the kubelet kill it before it deleted its Secret
// and Lease; the pod is a dependent of the Lease, so the garbage collector
// removes it once the Lease is gone.
func CleanupAgentInPod(ctx context.Context, c kubernetes.Interface, namespace, service, agentID string) error {
	return cleanupAgent(ctx, c, namespace, service, agentID, true)
}

func cleanupAgent(ctx context.Context, c kubernetes.Interface, namespace, service, agentID string, keepPods bool) error {
	var errs []error
	if _, err := Restore(ctx, c, namespace, service, agentID); err != nil {
		errs = append(errs, fmt.Errorf("restore service %s/%s: %w", namespace, service, err))
	}
	sel := metav1.ListOptions{LabelSelector: ServiceAgentSelector(service)}
	mine := func(m metav1.Object) bool {
		id := m.GetAnnotations()[AnnotationAgentID]
		return agentID == "" || id == "" || id == agentID
	}
	// The UID precondition keeps a delete from hitting an object of the
	// same name recreated since the list (a new agent instance).
	del := func(kind, name string, uid types.UID, f func(string, metav1.DeleteOptions) error) {
		opts := metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}}
		if err := f(name, opts); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", kind, namespace, name, err))
		}
	}
	ctxDel := func(f func(context.Context, string, metav1.DeleteOptions) error) func(string, metav1.DeleteOptions) error {
		return func(n string, o metav1.DeleteOptions) error { return f(ctx, n, o) }
	}
	if !keepPods {
		if pods, err := c.CoreV1().Pods(namespace).List(ctx, sel); err != nil {
			errs = append(errs, fmt.Errorf("list traffic-agent pods in %s: %w", namespace, err))
		} else {
			for _, p := range pods.Items {
				if mine(&p) {
					del("pod", p.Name, p.UID, ctxDel(c.CoreV1().Pods(namespace).Delete))
				}
			}
		}
	}
	if deps, err := c.AppsV1().Deployments(namespace).List(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("list traffic-agent deployments in %s: %w", namespace, err))
	} else {
		for _, d := range deps.Items {
			if mine(&d) {
				del("deployment", d.Name, d.UID, ctxDel(c.AppsV1().Deployments(namespace).Delete))
			}
		}
	}
	// The Secret by name, not by label: listing Secrets would let whoever
	// runs this read every Secret of the namespace, so the in-cluster
	// agent's Role does not grant it (and a forbidden list here would
	// keep the Lease below from being deleted). The agent's Secret is
	// always named after the Service.
	name := AgentName(service)
	if s, err := c.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
		if s.Labels[LabelComponent] == ComponentAgent && s.Labels[LabelService] == service && mine(s) {
			del("secret", s.Name, s.UID, ctxDel(c.CoreV1().Secrets(namespace).Delete))
		}
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("read traffic-agent secret %s/%s: %w", namespace, name, err))
	}
	if len(errs) == 0 {
		// The Lease goes last: while it exists no second agent is
		// installed for the Service.
		if leases, err := c.CoordinationV1().Leases(namespace).List(ctx, sel); err != nil {
			errs = append(errs, fmt.Errorf("list traffic-agent leases in %s: %w", namespace, err))
		} else {
			for _, l := range leases.Items {
				if mine(&l) {
					del("lease", l.Name, l.UID, ctxDel(c.CoordinationV1().Leases(namespace).Delete))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove traffic-agent of %s/%s: %w", namespace, service, err)
	}
	return nil
}

// UnreadableError says the takeover annotation of Service Namespace/Name
// cannot be read: an earlier intercept left it damaged, and it is to be
// removed (uninstalling intercepts removes it).
type UnreadableError struct {
	Namespace, Service string
	Err                error
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("service %s/%s: unreadable %s annotation: %v", e.Namespace, e.Service, Annotation, e.Err)
}

func (e *UnreadableError) Unwrap() error { return e.Err }
