package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/svcproxy"
	"github.com/tether-dev/tether/intercept/tunnel"
)

// routing is an embedded agent serving ports 8443 and 8080 of shop/web on
// real loopback listeners, with one original pod whose process answers
// each connection with "original:<port>" and then echoes lines.
type routing struct {
	t     *testing.T
	ctx   context.Context
	a     *Agent
	c     *fake.Clientset
	ctl   string
	addrs map[int32]string
}

const testToken = "token"

func newRouting(t *testing.T) *routing {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, c := testAgent(t)
	a.log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	a.opts.Embedded, a.opts.Token = true, testToken
	a.rec.Ports = []record.Port{{Port: 8443, TargetPort: 8443}, {Port: 8080, TargetPort: 8080}}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", Annotations: map[string]string{}},
		Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	r := &routing{t: t, ctx: ctx, a: a, c: c, addrs: map[int32]string{}}
	var ports []record.Port
	var ls []net.Listener
	for _, p := range a.rec.Ports {
		pod.Annotations[svcproxy.LocalAddressKey(p.TargetPort)] = serve(t, fmt.Sprintf("original:%d", p.Port))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		r.addrs[p.Port] = l.Addr().String()
		ports = append(ports, p)
		ls = append(ls, l)
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := idx.Add(pod); err != nil {
		t.Fatal(err)
	}
	a.pods = corelisters.NewPodLister(idx)
	for i, l := range ls {
		go a.servePort(ctx, l, ports[i:i+1])
	}

	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	r.ctl = ctl.Addr().String()
	go a.acceptSessions(ctx, ctl)
	return r
}

// serve runs a process that greets each connection with banner and then
// echoes it, and returns its address.
func serve(t *testing.T, banner string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go greetAndEcho(c, banner)
		}
	}()
	return l.Addr().String()
}

func greetAndEcho(c net.Conn, banner string) {
	defer c.Close()
	if _, err := fmt.Fprintln(c, banner); err != nil {
		return
	}
	_, _ = io.Copy(c, c)
}

// intercept creates a global intercept of port and attaches its workbench
// through the agent's control listener, as start does. The workbench's
// process greets with "workbench:<name>".
func (r *routing) intercept(name string, port, seconds int32) {
	r.t.Helper()
	l := interceptLease(r.t, name, port, nil, seconds)
	if _, err := r.c.CoordinationV1().Leases("shop").Create(r.ctx, l, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	conn, err := net.Dial("tcp", r.ctl)
	if err != nil {
		r.t.Fatal(err)
	}
	s, err := tunnel.Client(conn, testToken, name, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Close() })
	go func() {
		for {
			st, err := s.AcceptStream()
			if err != nil {
				return
			}
			go greetAndEcho(st, "workbench:"+name)
		}
	}()
	// The agent registers the session just after its OK.
	r.eventually("workbench "+name+" attached", func() bool { return r.a.attached(name) })
}

func (r *routing) eventually(what string, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client is one long-lived connection to a port of the Service.
type client struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
	// to is the banner of whoever answered: where the connection went.
	to string
}

func (r *routing) dial(port int32) *client {
	r.t.Helper()
	c, err := net.Dial("tcp", r.addrs[port])
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	cl := &client{t: r.t, c: c, rd: bufio.NewReader(c)}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := cl.rd.ReadString('\n')
	if err != nil {
		r.t.Fatalf("connection to port %d: no greeting: %v", port, err)
	}
	cl.to = strings.TrimSpace(line)
	return cl
}

// alive checks the connection still carries data both ways.
func (cl *client) alive() error {
	_ = cl.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(cl.c, "ping"); err != nil {
		return err
	}
	line, err := cl.rd.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo %q", line)
	}
	return nil
}

// closed waits for the agent to close the connection.
func (cl *client) closed() error {
	_ = cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := cl.rd.ReadString('\n')
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("connection to %s still open", cl.to)
	}
	if err == nil {
		return fmt.Errorf("connection to %s still carries data", cl.to)
	}
	return nil
}

func expect(t *testing.T, cl *client, to string) {
	t.Helper()
	if cl.to != to {
		t.Fatalf("connection went to %q, want %q", cl.to, to)
	}
}

// The debug-principal flow in the order that used to strand the agents:
// port 8080 is intercepted first, so the gRPC streams on 8443 reconnect
// through the agent and are passed through to the original pods; when 8443
// is intercepted too, those pass-through connections are closed (their
// clients reconnect to the new intercept), while port 8080's connections
// are left alone.
func TestPassThroughClosedWhenItsPortIsInterceptedGlobally(t *testing.T) {
	r := newRouting(t)
	r.intercept("web-8080", 8080, 10)
	if _, err := r.a.refresh(r.ctx); err != nil {
		t.Fatal(err)
	}
	stream := r.dial(8443)
	expect(t, stream, "original:8443")
	webhook := r.dial(8080)
	expect(t, webhook, "workbench:web-8080")
	// A refresh with no routing change closes nothing.
	if _, err := r.a.refresh(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := stream.alive(); err != nil {
		t.Fatalf("pass-through connection broken without a routing change: %v", err)
	}

	r.intercept("web-8443", 8443, 10)
	if err := stream.closed(); err != nil {
		t.Fatalf("pass-through connection of the newly intercepted port: %v", err)
	}
	if err := webhook.alive(); err != nil {
		t.Fatalf("connection of the other port: %v", err)
	}
	expect(t, r.dial(8443), "workbench:web-8443")
	expect(t, r.dial(8080), "workbench:web-8080")
}

// A connection carried to a global intercept's workbench is closed when
// the intercept's Lease expires, and its client reconnects to the original
// pods; the other port's connections stay.
func TestCarriedClosedWhenTheLeaseExpires(t *testing.T) {
	r := newRouting(t)
	r.intercept("web-8443", 8443, 1)
	stream := r.dial(8443)
	expect(t, stream, "workbench:web-8443")
	other := r.dial(8080)
	expect(t, other, "original:8080")

	r.eventually("the unrenewed intercept dropped", func() bool {
		n, err := r.a.refresh(r.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	if err := stream.closed(); err != nil {
		t.Fatalf("connection carried for the expired intercept: %v", err)
	}
	if err := other.alive(); err != nil {
		t.Fatalf("connection of the other port: %v", err)
	}
	expect(t, r.dial(8443), "original:8443")
}

// A keep-alive connection passed through before a personal intercept of
// its port starts is closed, so that its client's next requests reach the
// HTTP router, which looks at their headers.
func TestPassThroughClosedWhenAPersonalInterceptStarts(t *testing.T) {
	r := newRouting(t)
	kept := r.dial(8080)
	expect(t, kept, "original:8080")
	other := r.dial(8443)
	expect(t, other, "original:8443")

	l := interceptLease(t, "web-8080", 8080, map[string]string{"X-Dev": "alice"}, 10)
	if _, err := r.c.CoordinationV1().Leases("shop").Create(r.ctx, l, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.refresh(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := kept.closed(); err != nil {
		t.Fatalf("pass-through connection of the personally intercepted port: %v", err)
	}
	if err := other.alive(); err != nil {
		t.Fatalf("connection of the other port: %v", err)
	}
}

// reconcile and connections arriving race freely: every connection is
// either routed by the new routes or closed.
func TestReconcileRacesAccept(t *testing.T) {
	r := newRouting(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				r.a.reconcile()
			}
		}
	})
	for range 20 {
		expect(t, r.dial(8443), "original:8443")
	}
	close(stop)
	wg.Wait()
}
