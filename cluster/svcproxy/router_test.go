package svcproxy

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/cluster/netpipe/netpipetest"
)

func TestParseServiceAddress(t *testing.T) {
	for in, want := range map[string][3]string{
		"web.shop.svc:80":               {"shop", "web", "80"},
		"web.shop.svc.cluster.local:80": {"shop", "web", "80"},
		"web.shop:80":                   {"shop", "web", "80"},
		"web:80":                        {"dflt", "web", "80"},
	} {
		ns, name, port, err := ParseServiceAddress(in, "dflt")
		if err != nil || ns != want[0] || name != want[1] || port != 80 {
			t.Errorf("%s: %s %s %d %v", in, ns, name, port, err)
		}
	}
	if _, _, _, err := ParseServiceAddress("a.b.c.d:80", ""); err == nil {
		t.Error("a.b.c.d accepted")
	}
}

// The Router follows Service → EndpointSlice → Pod annotation, and the
// Proxy serves it on loopback.
func TestProxyRoutesToAnnotatedPod(t *testing.T) {
	pong := netpipetest.Serve(t, netpipetest.Reply("pong"))
	name, port, ready := "http", int32(8080), true
	cs := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop",
			Annotations: map[string]string{AnnotationLocalAddress: pong}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "web-x", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-0", Namespace: "shop"}}},
		},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := New(Options{Client: cs})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.Ready()
	addr, ok := p.Addr("shop", "web", 80)
	if !ok {
		t.Fatalf("no route: %v", p.Routes())
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "pong" {
		t.Fatalf("got %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
