package svcproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/cluster/netpipe/netpipetest"
)

func TestParsePin(t *testing.T) {
	k, addr, err := ParsePin("tether-system/tether-principal:8443=127.0.0.1:18443")
	if err != nil {
		t.Fatal(err)
	}
	if want := (ServicePort{"tether-system", "tether-principal", 8443}); k != want || addr != "127.0.0.1:18443" {
		t.Fatalf("got %v %s", k, addr)
	}
	if k.String() != "tether-system/tether-principal:8443" {
		t.Errorf("String: %s", k)
	}
	for _, bad := range []string{
		"", "tether-system/tether-principal:8443", "tether-principal:8443=127.0.0.1:1",
		"a/b:x=127.0.0.1:1", "a/b:0=127.0.0.1:1", "a/b:80=127.0.0.1", "a/b/c:80=127.0.0.1:1", "/b:80=127.0.0.1:1",
	} {
		if _, _, err := ParsePin(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if !strings.Contains(err.Error(), "want namespace/service:port=host:port") {
			t.Errorf("%q: unhelpful error %v", bad, err)
		}
	}
}

func pod(name, addr string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop",
		Annotations: map[string]string{AnnotationLocalAddress: addr}}}
}

func service() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
}

// slice is the Service's EndpointSlice listing pods, all ready.
func slice(pods ...string) *discoveryv1.EndpointSlice {
	name, port, ready := "http", int32(8080), true
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-x", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
	}
	for i, p := range pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.244.0.%d", i+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: p, Namespace: "shop"},
		})
	}
	return s
}

func runProxy(t *testing.T, p *Proxy) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("proxy ended before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy not ready after 10s")
	}
}

// conn is a client connection through the proxy.
type conn struct {
	net.Conn
	r *bufio.Reader
}

// dial connects to addr and returns the backend's greeting ("" when the
// proxy closed the connection for want of a backend).
func dial(t *testing.T, addr string) (*conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	_ = c.SetReadDeadline(time.Time{})
	return &conn{c, r}, strings.TrimSpace(line)
}

// alive reports whether the connection still echoes.
func (c *conn) alive() bool {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		return false
	}
	line, err := c.r.ReadString('\n')
	return err == nil && line == "ping\n"
}

// closedWithin reports whether the proxy closes the connection within d.
func (c *conn) closedWithin(d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.r.ReadString('\n')
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A pinned Service port is served on its fixed address from the start,
// before its Service exists, and routes once it does.
func TestPinnedAddress(t *testing.T) {
	pin := netpipetest.FreeAddr(t)
	cs := fake.NewClientset()
	key := ServicePort{"shop", "web", 80}
	p := New(Options{Client: cs, Pinned: map[ServicePort]string{key: pin}})
	runProxy(t, p)
	if got, ok := p.Addr("shop", "web", 80); !ok || got != pin {
		t.Fatalf("Addr = %q %v, want the pinned %s", got, ok, pin)
	}
	if _, greeting := dial(t, pin); greeting != "" {
		t.Fatalf("served %q with no Service", greeting)
	}

	ctx := context.Background()
	a := netpipetest.Echo(t, "a")
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, pod("web-a", a), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("shop").Create(ctx, slice("web-a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("shop").Create(ctx, service(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pinned address routes to the pod", func() bool {
		_, g := dial(t, pin)
		return g == "a"
	})
	if routes := p.Routes(); len(routes) != 1 || routes[0].Address != pin {
		t.Fatalf("routes %v", routes)
	}

	// The address stays across the Service's deletion: it was promised.
	if err := cs.CoreV1().Services("shop").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pinned address stops routing", func() bool {
		_, g := dial(t, pin)
		return g == ""
	})
	if got, ok := p.Addr("shop", "web", 80); !ok || got != pin {
		t.Fatalf("pinned listener gone with the Service: %q %v", got, ok)
	}
}

func TestPinnedAddressTaken(t *testing.T) {
	l := netpipetest.Listen(t)
	p := New(Options{Client: fake.NewClientset(), Pinned: map[ServicePort]string{{"shop", "web", 80}: l.Addr().String()}})
	err := p.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "pinned shop/web:80") {
		t.Fatalf("Run = %v, want a refusal naming the pin", err)
	}
}

// Connections to an endpoint that leaves the Service are closed, so
// long-lived clients reconnect and follow the new routing; connections to
// endpoints that stay are not.
func TestClosesConnectionsOfDepartedEndpoints(t *testing.T) {
	ctx := context.Background()
	a, b := netpipetest.Echo(t, "a"), netpipetest.Echo(t, "b")
	cs := fake.NewClientset(service(), pod("web-a", a), pod("web-b", b), slice("web-a"))
	p := New(Options{Client: cs})
	runProxy(t, p)
	var addr string
	eventually(t, "a route", func() bool {
		var ok bool
		addr, ok = p.Addr("shop", "web", 80)
		return ok
	})
	toA, g := dial(t, addr)
	if g != "a" {
		t.Fatalf("first connection reached %q", g)
	}

	// b joins (a scale-up): the connection to a is left alone.
	if _, err := cs.DiscoveryV1().EndpointSlices("shop").Update(ctx, slice("web-a", "web-b"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new connections reach b", func() bool {
		_, g := dial(t, addr)
		return g == "b"
	})
	if !toA.alive() {
		t.Fatal("a connection to an endpoint that stayed was closed")
	}

	// a leaves (a selector swap): its connection is closed, b's is not.
	toB := toA
	for {
		c, g := dial(t, addr)
		if g == "b" {
			toB = c
			break
		}
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("shop").Update(ctx, slice("web-b"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !toA.closedWithin(5 * time.Second) {
		t.Fatal("the connection to the departed endpoint is still open")
	}
	if !toB.alive() {
		t.Fatal("the connection to the remaining endpoint was closed")
	}
	if _, g := dial(t, addr); g != "b" {
		t.Fatalf("a reconnect reached %q, want b", g)
	}

	// b's pod is deleted: the slice still names it, but it has no address
	// any more, so its connections go too.
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "web-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !toB.closedWithin(5 * time.Second) {
		t.Fatal("the connection to a deleted pod is still open")
	}
}
