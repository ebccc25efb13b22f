package trafficagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/elazarl/goproxy"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tether-dev/tether/cluster/netpipe"
	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/record"
)

// portConns are the live connections of one port listener.
type portConns struct {
	ports []record.Port
	conns map[*trackedConn]struct{}
}

// trackedConn is one accepted connection and, once dialed, its upstream:
// closing it closes both, so neither side is left waiting on a peer that
// has nothing more to say (an idle gRPC stream would otherwise notice only
// at its next keepalive).
type trackedConn struct {
	route  string
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// add attaches c to the connection, or closes c if the connection was
// closed meanwhile.
func (t *trackedConn) add(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns = append(t.conns, c)
	return true
}

func (t *trackedConn) close() {
	t.mu.Lock()
	t.closed = true
	cs := t.conns
	t.conns = nil
	t.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// httpConn is a connection handed to the HTTP router: the server (or
// goproxy, for a hijacked one) closes it when done, and that is when it
// stops being tracked.
type httpConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *httpConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// originals are the addresses of the ready original pods for targetPort.
func (a *Agent) originals(p record.Port) []string {
	pods, err := a.pods.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []string
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || !podReady(pod) {
			continue
		}
		if a.opts.Embedded {
			if addr := svcproxy.LocalAddress(pod, p.TargetPort); addr != "" {
				out = append(out, addr)
			}
		} else if pod.Status.PodIP != "" {
			out = append(out, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(p.TargetPort))))
		}
	}
	sort.Strings(out)
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (a *Agent) dialOriginal(ctx context.Context, p record.Port) (net.Conn, error) {
	addrs := a.originals(p)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no ready original pod for port %d of %s/%s", p.Port, a.rec.Namespace, a.rec.Service)
	}
	start := int(a.next.Add(1))
	var errs []error
	var d net.Dialer
	for i := range addrs {
		c, err := d.DialContext(ctx, "tcp", addrs[(start+i)%len(addrs)])
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// servePort serves one listener. Each accepted connection is routed by
// the intercepts of its port at that moment: a global intercept gets it
// whole, personal intercepts put it through the HTTP router, and with
// neither it is spliced to an original pod. A connection keeps its route
// while that is still the route a new connection would get; reconcile
// closes it when not (see there).
func (a *Agent) servePort(ctx context.Context, l net.Listener, ports []record.Port) {
	p := ports[0]
	pc := &portConns{ports: ports, conns: map[*trackedConn]struct{}{}}
	a.connsMu.Lock()
	a.listeners = append(a.listeners, pc)
	a.connsMu.Unlock()
	hl := newConnListener(l.Addr())
	defer hl.Close()
	go a.serveHTTP(ctx, hl, ports)
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			rt, global := a.track(pc, c)
			var up net.Conn
			var err error
			switch {
			case global != nil:
				if up, err = a.openWorkbench(global.rec.Name); err != nil {
					// Fail open: with no workbench the original pods
					// serve, and the connection is a pass-through one.
					a.untrack(pc, rt)
					rt = a.trackAs(pc, c, routeOriginal)
					up, err = a.dialOriginal(ctx, p)
				}
			case rt.route == routeHTTP:
				hl.push(&httpConn{Conn: c, onClose: func() { a.untrack(pc, rt) }})
				return
			default:
				up, err = a.dialOriginal(ctx, p)
			}
			defer a.untrack(pc, rt)
			if err != nil {
				a.log.Warn("drop connection", "port", p.Port, "err", err)
				c.Close()
				return
			}
			if !rt.add(up) {
				c.Close()
				return
			}
			netpipe.Splice(c, up)
		}()
	}
}

// track decides c's route and registers it under connsMu, so that a
// routing change either precedes the decision or is followed by a
// reconcile that sees the connection.
func (a *Agent) track(pc *portConns, c net.Conn) (*trackedConn, *route) {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	name, global := a.routeFor(pc.ports)
	t := &trackedConn{route: name, conns: []net.Conn{c}}
	pc.conns[t] = struct{}{}
	return t, global
}

// trackAs registers c with a route decided by the caller (fail open).
func (a *Agent) trackAs(pc *portConns, c net.Conn, name string) *trackedConn {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	t := &trackedConn{route: name, conns: []net.Conn{c}}
	pc.conns[t] = struct{}{}
	return t
}

func (a *Agent) untrack(pc *portConns, t *trackedConn) {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	delete(pc.conns, t)
}

// serveHTTP routes the HTTP requests of personally intercepted
// connections with goproxy: requests carrying an intercept's headers go
// to its workbench, all others to the original pods. goproxy is a forward
// proxy, so its NonproxyHandler turns the origin-form requests clients
// send to a Service into absolute ones first.
func (a *Agent) serveHTTP(ctx context.Context, l net.Listener, ports []record.Port) {
	p := ports[0]
	toOriginal := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return a.dialOriginal(ctx, p)
		},
		MaxIdleConnsPerHost: 16,
	}
	defer toOriginal.CloseIdleConnections()
	px := goproxy.NewProxyHttpServer()
	px.Logger = slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	px.KeepAcceptEncoding = true
	px.KeepDestinationHeaders = true
	px.Tr = toOriginal
	px.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Scheme = "http"
		r.URL.Host = r.Host
		px.ServeHTTP(w, r)
	})
	px.OnRequest().DoFunc(func(r *http.Request, pctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		var tr http.RoundTripper = toOriginal
		if rt := a.match(ports, r.Header); rt != nil {
			rt.count.reqs.Add(1)
			tr = a.transport(rt.rec.Name)
		}
		pctx.RoundTripper = goproxy.RoundTripperFunc(func(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
			return tr.RoundTrip(req)
		})
		return r, nil
	})
	srv := &http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
		a.log.Warn("personal intercept server", "port", p.Port, "err", err)
	}
}

// connListener hands connections already accepted (and routed to HTTP)
// to an http.Server.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
