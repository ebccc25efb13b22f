package trafficagent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/cluster/netpipe/netpipetest"
	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/record"
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
	out := &testOutput{w: t.Output()}
	t.Cleanup(out.end) // runs last: the agent's goroutines may log a detach after the test
	a.log = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
		pod.Annotations[svcproxy.LocalAddressKey(p.TargetPort)] = netpipetest.Echo(t, fmt.Sprintf("original:%d", p.Port))
		l := netpipetest.Listen(t)
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

	ctl := netpipetest.Listen(t)
	r.ctl = ctl.Addr().String()
	go a.acceptSessions(ctx, ctl)
	return r
}

// testOutput is a test's output that drops what is written once the test
// has ended (testing panics on a write then).
type testOutput struct {
	mu    sync.Mutex
	w     io.Writer
	ended bool
}

func (o *testOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return len(b), nil
	}
	return o.w.Write(b)
}

func (o *testOutput) end() {
	o.mu.Lock()
	o.ended = true
	o.mu.Unlock()
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
	netpipetest.ServeStreams(s.Accept, func(st net.Conn) { netpipetest.GreetAndEcho(st, "workbench:"+name) })
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

// reconcile and connections arriving race freely: while a global
// intercept of the port comes and goes, every connection is either on the
// route a new connection gets now or closed.
func TestReconcileRacesAccept(t *testing.T) {
	r := newRouting(t)
	leases := r.c.CoordinationV1().Leases("shop")
	const name = "web-8443"
	var (
		mu      sync.Mutex
		current = "original:8443" // the banner a new connection gets
	)
	// attach starts a workbench session whose process greets with banner.
	attach := func(banner string) (func(), error) {
		conn, err := net.Dial("tcp", r.ctl)
		if err != nil {
			return nil, err
		}
		s, err := tunnel.Client(conn, testToken, name, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, err
		}
		netpipetest.ServeStreams(s.Accept, func(st net.Conn) { netpipetest.GreetAndEcho(st, banner) })
		return func() { s.Close() }, nil
	}
	stop := make(chan struct{})
	cycles := make(chan int, 1)
	var wg sync.WaitGroup
	var detach func()
	wg.Go(func() {
		n := 0
		defer func() { cycles <- n }()
		for {
			// Intercepted: the Lease, then its workbench (whose
			// handshake refreshes the routes and then reconciles).
			if _, err := leases.Create(r.ctx, interceptLease(t, name, 8443, nil, 10), metav1.CreateOptions{}); err != nil {
				t.Error(err)
				return
			}
			banner := fmt.Sprintf("workbench:%s#%d", name, n)
			d, err := attach(banner)
			if err != nil {
				t.Error(err)
				return
			}
			for !r.a.attached(name) {
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			current = banner
			mu.Unlock()
			n++
			select {
			case <-stop:
				// End intercepted: a pass-through connection left
				// open now would be on the wrong route.
				detach = d
				return
			default:
			}
			// Stopped: the Lease goes, the refresh drops the route.
			mu.Lock()
			current = "original:8443"
			mu.Unlock()
			if err := leases.Delete(r.ctx, record.LeaseName(name), metav1.DeleteOptions{}); err != nil {
				t.Error(err)
				return
			}
			if _, err := r.a.refresh(r.ctx); err != nil {
				t.Error(err)
				return
			}
			d()
		}
	})
	// The dials go on while the churn ends, so that some race the last
	// routing change: the one no later change would paper over.
	var cls []*client
	for i := range 60 {
		if i == 30 {
			close(stop)
		}
		c, err := net.Dial("tcp", r.addrs[8443])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cl := &client{t: t, c: c, rd: bufio.NewReader(c)}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := cl.rd.ReadString('\n'); err == nil {
			cl.to = strings.TrimSpace(line)
			cls = append(cls, cl)
		} // else closed before its greeting: its route changed at once
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	defer detach()
	if n := <-cycles; n < 2 {
		t.Logf("only %d intercept cycles during the dials", n)
	}
	mu.Lock()
	want := current
	mu.Unlock()
	for i, cl := range cls {
		if cl.to == want {
			if err := cl.alive(); err != nil {
				t.Errorf("connection %d to %s, the current route: %v", i, cl.to, err)
			}
			continue
		}
		if err := cl.closed(); err != nil {
			t.Errorf("connection %d, now routed to %s: %v", i, want, err)
		}
	}
}

// A workbench that presents the token but names an intercept with no
// Lease is refused with the tunnel's error reply and gets no session.
func TestSessionRefusedForAnUnknownIntercept(t *testing.T) {
	r := newRouting(t)
	conn, err := net.Dial("tcp", r.ctl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tunnel.Client(conn, testToken, "ghost", slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "no intercept ghost") {
		t.Fatalf("err = %v, want the agent to refuse intercept ghost", err)
	}
	if r.a.attached("ghost") {
		t.Fatal("the agent kept a session for an intercept with no Lease")
	}
	// A Lease created afterwards routes nowhere until its own workbench
	// attaches.
	r.intercept("web-8443", 8443, 10)
	expect(t, r.dial(8443), "workbench:web-8443")
}

// Only the holder of an intercept's Lease attaches to it: another
// workbench presenting the token cannot take its session over.
func TestSessionRefusedToAnotherHolder(t *testing.T) {
	r := newRouting(t)
	l := interceptLease(t, "web-8443", 8443, nil, 10)
	var rec record.Record
	if err := json.Unmarshal([]byte(l.Annotations[record.Annotation]), &rec); err != nil {
		t.Fatal(err)
	}
	rec.Holder = "alice/1"
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	l.Annotations[record.Annotation] = string(b)
	if _, err := r.c.CoordinationV1().Leases("shop").Create(r.ctx, l, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	attach := func(holder string) (*yamux.Session, error) {
		conn, err := net.Dial("tcp", r.ctl)
		if err != nil {
			t.Fatal(err)
		}
		return tunnel.ClientAs(conn, testToken, "web-8443", holder, log)
	}
	if _, err := attach("bob/2"); err == nil || !strings.Contains(err.Error(), "held by alice/1") {
		t.Fatalf("bob's session: err = %v, want a refusal naming the holder", err)
	}
	if r.a.attached("web-8443") {
		t.Fatal("the agent attached bob to alice's intercept")
	}
	alice, err := attach("alice/1")
	if err != nil {
		t.Fatalf("the holder's session: %v", err)
	}
	t.Cleanup(func() { alice.Close() })
	r.eventually("alice attached", func() bool { return r.a.attached("web-8443") })
	if _, err := attach(""); err == nil || !strings.Contains(err.Error(), "already has its workbench attached") {
		t.Fatalf("a session presenting no holder: err = %v, want a refusal", err)
	}
	r.a.mu.Lock()
	kept := r.a.sessions["web-8443"] != nil && !r.a.sessions["web-8443"].IsClosed()
	r.a.mu.Unlock()
	if !kept {
		t.Fatal("alice's session was replaced")
	}
}
