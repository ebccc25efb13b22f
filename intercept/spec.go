package intercept

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
)

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
			return nil, &FieldError{Field: "Headers", After: fmt.Sprintf(" %q: want NAME=VALUE, for example X-Dev=alice", h)}
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, &FieldError{Field: "Headers", After: fmt.Sprintf(" %q: %q is not a valid HTTP header name: use letters, digits and !#$%%&'*+-.^_`|~ only (no spaces, colons or quotes)", h, k)}
		}
		name := http.CanonicalHeaderKey(k)
		if _, dup := out[name]; dup {
			return nil, &FieldError{Field: "Headers", After: fmt.Sprintf(" %q: header %s is already given: give each header once (a request must carry all of them to be intercepted)", h, name)}
		}
		out[name] = v
	}
	return out, nil
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
		switch {
		case r.Global() && len(spec.Headers) == 0:
			return &ConflictError{Names: []string{r.Name}, Err: fmt.Errorf("port %d of service %s is already intercepted globally by %q", spec.Port, target, r.Name)}
		case r.Global():
			return &ConflictError{Names: []string{r.Name}, Err: fmt.Errorf("port %d of service %s is intercepted globally by %q, which takes every connection, so a personal intercept would never see a request", spec.Port, target, r.Name)}
		case len(spec.Headers) > 0 && maps.Equal(r.Headers, spec.Headers):
			return &ConflictError{Names: []string{r.Name}, Err: fmt.Errorf("port %d of service %s is already intercepted with the same headers (%s) by %q", spec.Port, target, describeHeaders(r.Headers), r.Name)}
		}
		personal = append(personal, r.Name)
	}
	if len(spec.Headers) == 0 && len(personal) > 0 {
		return &ConflictError{Names: personal, Err: fmt.Errorf("port %d of service %s has personal intercepts (%s); a global intercept would take their requests",
			spec.Port, target, strings.Join(personal, ", "))}
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
		return &FieldError{Field: "To", Before: "nothing is listening at ", After: fmt.Sprintf(" %s: start your local process first (%v)", addr, err), Err: err}
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
