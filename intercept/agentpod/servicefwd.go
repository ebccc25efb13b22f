package agentpod

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster/netpipe"
)

// ServiceForward serves a Service port on a local listener, like
// `kubectl port-forward svc/NAME`, except that each connection picks a
// ready endpoint of the Service afresh: kubectl resolves the Service to
// one pod when it starts, so it would keep sending to the original pod
// after an intercept took the Service over, and to a deleted traffic-agent
// after it ended. Here the API server's EndpointSlices decide, as they do
// for kube-proxy.
type ServiceForward struct {
	l      net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ForwardService starts serving namespace/service's port on listen
// (host:port; port 0 picks one) through pf until Close.
func ForwardService(cs kubernetes.Interface, pf *PortForward, namespace, service string, port int32, listen string, log *slog.Logger) (*ServiceForward, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen for a port-forward to service %s/%s: %w", namespace, service, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &ServiceForward{l: l, cancel: cancel}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				up, err := dialService(ctx, cs, pf, namespace, service, port)
				if err != nil {
					log.Info("port-forward to a service", "service", namespace+"/"+service, "port", port, "err", err)
					return
				}
				// Close ends the connections still open.
				stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
				defer stop()
				netpipe.Splice(c, up)
			}()
		}
	}()
	return f, nil
}

// Addr is the local address the Service port is served on.
func (f *ServiceForward) Addr() string { return f.l.Addr().String() }

// Close stops listening and ends the forwarded connections.
func (f *ServiceForward) Close() {
	f.cancel()
	f.l.Close()
	f.wg.Wait()
}

// dialService opens a port-forward to a ready endpoint of the Service
// port, chosen at random among them.
func dialService(ctx context.Context, cs kubernetes.Interface, pf *PortForward, namespace, service string, port int32) (net.Conn, error) {
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	portName, found := "", false
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			portName, found = p.Name, true
		}
	}
	if !found {
		return nil, fmt.Errorf("service %s/%s has no port %d", namespace, service, port)
	}
	slices, err := cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return nil, err
	}
	type target struct {
		pod  string
		port int32
	}
	var ready []target
	for _, s := range slices.Items {
		var tp int32
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				tp = *p.Port
			}
		}
		if tp == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" || (e.Conditions.Ready != nil && !*e.Conditions.Ready) {
				continue
			}
			ready = append(ready, target{pod: e.TargetRef.Name, port: tp})
		}
	}
	if len(ready) == 0 {
		return nil, fmt.Errorf("service %s/%s port %d has no ready endpoint", namespace, service, port)
	}
	t := ready[rand.IntN(len(ready))]
	d := *pf
	d.Port = t.port
	return d.Dial(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: t.pod}})
}
