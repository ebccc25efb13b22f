package record

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

const (
	// Annotation on a taken-over Service holds its Record as JSON.
	Annotation = "tether.dev/intercept"
	// LabelIntercept names the intercept an object belongs to.
	LabelIntercept = "tether.dev/intercept"
	// LabelComponent marks traffic-agent pods, Deployments and Leases, so
	// uninstall finds everything even without a Service annotation.
	LabelComponent      = "app.kubernetes.io/component"
	ComponentAgent      = "traffic-agent"
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	ManagedBy           = "tether"
	AnnotationControl   = "tether.dev/control-address"
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

// Record describes one intercept.
type Record struct {
	Name      string `json:"name"`
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	// Port is the intercepted Service port; the other ports are
	// forwarded to the original pods by the agent.
	Port    int32             `json:"port"`
	Ports   []Port            `json:"ports"`
	Headers map[string]string `json:"headers,omitempty"`
	// OriginalSelector is the Service's selector before the takeover.
	OriginalSelector map[string]string `json:"originalSelector"`
	AgentLabels      map[string]string `json:"agentLabels"`
	Lease            string            `json:"lease"`
	AgentPod         string            `json:"agentPod,omitempty"`
	AgentDeployment  string            `json:"agentDeployment,omitempty"`
	Holder           string            `json:"holder"`
	Created          time.Time         `json:"created"`
}

// Global reports whether every connection is intercepted (no headers).
func (r *Record) Global() bool { return len(r.Headers) == 0 }

// Labels are put on every object tether creates for the intercept.
func Labels(name string) map[string]string {
	return map[string]string{LabelIntercept: name, LabelComponent: ComponentAgent, LabelManagedBy: ManagedBy}
}

// ComponentSelector selects every intercept object in a cluster.
const ComponentSelector = LabelComponent + "=" + ComponentAgent + "," + LabelManagedBy + "=" + ManagedBy

// FromService returns the Record on svc, if any.
func FromService(svc *corev1.Service) (*Record, error) {
	v, ok := svc.Annotations[Annotation]
	if !ok {
		return nil, nil
	}
	var r Record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("service %s/%s: unreadable %s annotation: %w", svc.Namespace, svc.Name, Annotation, err)
	}
	return &r, nil
}

// TakeOver points svc at the agent and saves rec on it, atomically with
// respect to other writers (the update carries svc's resourceVersion).
func TakeOver(ctx context.Context, c kubernetes.Interface, svc *corev1.Service, rec *Record) (*corev1.Service, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	s := svc.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[Annotation] = string(b)
	s.Spec.Selector = maps.Clone(rec.AgentLabels)
	return c.CoreV1().Services(s.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: "tether-intercept"})
}

// Restore puts the Service back as it was before intercept name took it
// over. It does nothing (and reports false) when the Service is gone or
// carries no record of that intercept, so the workbench, the agent and a
// sweep may all call it.
func Restore(ctx context.Context, c kubernetes.Interface, namespace, service, name string) (bool, error) {
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
		rec, err := FromService(svc)
		if err != nil || rec == nil || rec.Name != name {
			return err
		}
		svc.Spec.Selector = maps.Clone(rec.OriginalSelector)
		delete(svc.Annotations, Annotation)
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
// clock of the caller. The agent does not use it (it measures renewals on
// its own clock); sweeps do.
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

// Cleanup removes what intercept rec put into the cluster: the Service is
// restored, the agent's Pod or Deployment and the Lease deleted. Missing
// objects are not errors.
func Cleanup(ctx context.Context, c kubernetes.Interface, rec *Record) error {
	var errs []error
	if _, err := Restore(ctx, c, rec.Namespace, rec.Service, rec.Name); err != nil {
		errs = append(errs, fmt.Errorf("restore service %s/%s: %w", rec.Namespace, rec.Service, err))
	}
	ignore := func(err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if rec.AgentPod != "" {
		if err := ignore(c.CoreV1().Pods(rec.Namespace).Delete(ctx, rec.AgentPod, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})); err != nil {
			errs = append(errs, err)
		}
	}
	if rec.AgentDeployment != "" {
		if err := ignore(c.AppsV1().Deployments(rec.Namespace).Delete(ctx, rec.AgentDeployment, metav1.DeleteOptions{})); err != nil {
			errs = append(errs, err)
		}
	}
	if rec.Lease != "" {
		if err := ignore(c.CoordinationV1().Leases(rec.Namespace).Delete(ctx, rec.Lease, metav1.DeleteOptions{})); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("clean up intercept %s: %v", rec.Name, errs)
	}
	return nil
}
