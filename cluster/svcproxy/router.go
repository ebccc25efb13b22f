package svcproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// AnnotationLocalAddress on a Pod names the loopback host:port where the
// process standing in for the pod really listens. A port-specific variant,
// AnnotationLocalAddress + "." + <container port number>, wins over it for
// pods serving several ports.
const AnnotationLocalAddress = "tether.dev/local-address"

// LocalAddressKey is the annotation naming the local address of one
// container port.
func LocalAddressKey(port int32) string {
	return AnnotationLocalAddress + "." + strconv.Itoa(int(port))
}

// ErrNoEndpoints means the Service port has no ready endpoint that can be
// reached from this machine.
var ErrNoEndpoints = errors.New("no ready endpoints")

// RouterOptions configure a Router.
type RouterOptions struct {
	Client kubernetes.Interface
	// Namespace limits the Router to one namespace; empty means all.
	Namespace string
	// PodIPFallback dials podIP:port for endpoints whose pod carries no
	// local-address annotation. Off on embedded clusters, where pod IPs
	// are fake and dialing them would only hang.
	PodIPFallback bool
	Logger        *slog.Logger
}

// Router answers "where does a connection to this Service port go now",
// from informer caches, so each answer reflects the API server's current
// EndpointSlices without a round trip.
type Router struct {
	opts     RouterOptions
	factory  informers.SharedInformerFactory
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	pods     corelisters.PodLister
	next     atomic.Uint64
}

// NewRouter builds a Router; call Start before using it.
func NewRouter(opts RouterOptions) *Router {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := informers.NewSharedInformerFactoryWithOptions(opts.Client, 0, informers.WithNamespace(opts.Namespace))
	return &Router{
		opts:     opts,
		factory:  f,
		services: f.Core().V1().Services().Lister(),
		slices:   f.Discovery().V1().EndpointSlices().Lister(),
		pods:     f.Core().V1().Pods().Lister(),
	}
}

// OnServiceChange registers fn to run after every Service event; call it
// before Start.
func (r *Router) OnServiceChange(fn func()) error {
	_, err := r.factory.Core().V1().Services().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { fn() },
		UpdateFunc: func(_, _ any) { fn() },
		DeleteFunc: func(any) { fn() },
	})
	return err
}

// OnEndpointsChange registers fn to run after every EndpointSlice or Pod
// event: either can change where a Service port's connections belong (a
// selector change rewrites the slices, a deleted pod or a new local-address
// annotation changes the addresses). Call it before Start.
func (r *Router) OnEndpointsChange(fn func()) error {
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { fn() },
		UpdateFunc: func(_, _ any) { fn() },
		DeleteFunc: func(any) { fn() },
	}
	if _, err := r.factory.Discovery().V1().EndpointSlices().Informer().AddEventHandler(h); err != nil {
		return fmt.Errorf("service router: watch endpoint slices: %w", err)
	}
	if _, err := r.factory.Core().V1().Pods().Informer().AddEventHandler(h); err != nil {
		return fmt.Errorf("service router: watch pods: %w", err)
	}
	return nil
}

// Start runs the informers until ctx ends and waits for their first sync.
func (r *Router) Start(ctx context.Context) error {
	// Listers must be requested before Start for their informers to run.
	r.factory.Core().V1().Services().Informer()
	r.factory.Discovery().V1().EndpointSlices().Informer()
	r.factory.Core().V1().Pods().Informer()
	r.factory.Start(ctx.Done())
	for typ, ok := range r.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("service router: %v cache did not sync", typ)
		}
	}
	return nil
}

// Services lists the Services the Router sees.
func (r *Router) Services() ([]*corev1.Service, error) {
	return r.services.List(labels.Everything())
}

// Endpoints returns the reachable addresses of the ready endpoints behind
// port of Service namespace/name, sorted.
func (r *Router) Endpoints(namespace, name string, port int32) ([]string, error) {
	svc, err := r.services.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("service %s/%s not found", namespace, name)
	}
	if err != nil {
		return nil, err
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("service %s/%s has no port %d", namespace, name, port)
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name})
	slices, err := r.slices.EndpointSlices(namespace).List(sel)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var target int32 = -1
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name == sp.Name && p.Port != nil {
				target = *p.Port
			}
		}
		if target < 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			addr := r.address(namespace, ep, target)
			if addr != "" && !seen[addr] {
				seen[addr] = true
				out = append(out, addr)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (r *Router) address(namespace string, ep discoveryv1.Endpoint, port int32) string {
	if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
		ns := ep.TargetRef.Namespace
		if ns == "" {
			ns = namespace
		}
		if pod, err := r.pods.Pods(ns).Get(ep.TargetRef.Name); err == nil {
			if a := LocalAddress(pod, port); a != "" {
				return a
			}
		}
	}
	if r.opts.PodIPFallback && len(ep.Addresses) > 0 {
		return net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(port)))
	}
	return ""
}

// LocalAddress is the loopback address a pod's stand-in process serves
// port on, or "" when the pod has none.
func LocalAddress(pod *corev1.Pod, port int32) string {
	if a := pod.Annotations[LocalAddressKey(port)]; a != "" {
		return a
	}
	return pod.Annotations[AnnotationLocalAddress]
}

// Dial connects to one ready endpoint of the Service port, trying the
// next one when a dial fails, so a dead stand-in process costs one
// refused dial rather than the connection.
func (r *Router) Dial(ctx context.Context, namespace, name string, port int32) (net.Conn, error) {
	c, _, err := r.dial(ctx, namespace, name, port)
	return c, err
}

// dial is Dial that also names the endpoint address it connected to, so
// the Proxy can tell which connections an endpoint's departure concerns.
func (r *Router) dial(ctx context.Context, namespace, name string, port int32) (net.Conn, string, error) {
	eps, err := r.Endpoints(namespace, name, port)
	if err != nil {
		return nil, "", err
	}
	if len(eps) == 0 {
		return nil, "", fmt.Errorf("service %s/%s port %d: %w", namespace, name, port, ErrNoEndpoints)
	}
	start := int(r.next.Add(1))
	var errs []error
	var d net.Dialer
	for i := range eps {
		addr := eps[(start+i)%len(eps)]
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, addr, nil
		}
		errs = append(errs, err)
	}
	return nil, "", fmt.Errorf("service %s/%s port %d: %w", namespace, name, port, errors.Join(errs...))
}

// DialAddress dials a cluster DNS address (name.namespace.svc[.cluster.local]:port,
// or name:port in defaultNamespace) the way an in-cluster client would
// reach it. It exists for outbound traffic from the laptop on embedded
// clusters, which have no cluster DNS.
func (r *Router) DialAddress(ctx context.Context, addr, defaultNamespace string) (net.Conn, error) {
	ns, name, port, err := ParseServiceAddress(addr, defaultNamespace)
	if err != nil {
		return nil, err
	}
	return r.Dial(ctx, ns, name, port)
}

// ParseServiceAddress splits a cluster DNS host:port into namespace,
// Service name and port.
func ParseServiceAddress(addr, defaultNamespace string) (namespace, name string, port int32, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return "", "", 0, fmt.Errorf("bad port in %q", addr)
	}
	host = strings.TrimSuffix(strings.TrimSuffix(host, "."), ".cluster.local")
	host = strings.TrimSuffix(host, ".svc")
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1 && defaultNamespace != "":
		return defaultNamespace, parts[0], int32(n), nil
	case len(parts) == 2:
		return parts[1], parts[0], int32(n), nil
	}
	return "", "", 0, fmt.Errorf("%q is not a Service address (name.namespace.svc:port)", addr)
}
