package svcproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster/netpipe"
)

// Route is one Service port and the loopback address that serves it.
type Route struct {
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	Port      int32  `json:"port"`
	Address   string `json:"address"`
}

// ServicePort names one port of one Service.
type ServicePort struct {
	Namespace string
	Service   string
	Port      int32
}

// String is the namespace/name:port form ParsePin reads.
func (k ServicePort) String() string {
	return k.Namespace + "/" + k.Service + ":" + strconv.Itoa(int(k.Port))
}

// ParsePin reads a pin, namespace/service:port=host:port: the Service port
// and the fixed loopback address it is to be served on.
func ParsePin(s string) (ServicePort, string, error) {
	bad := func(why string) (ServicePort, string, error) {
		return ServicePort{}, "", fmt.Errorf("pin %q: %s (want namespace/service:port=host:port, for example tether-system/tether-principal:8443=127.0.0.1:18443)", s, why)
	}
	svc, addr, ok := strings.Cut(s, "=")
	if !ok {
		return bad("no '='")
	}
	nsName, port, ok := strings.Cut(svc, ":")
	if !ok {
		return bad("no Service port")
	}
	ns, name, ok := strings.Cut(nsName, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return bad("the Service is not namespace/name")
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil || n <= 0 || n > 65535 {
		return bad("bad Service port " + strconv.Quote(port))
	}
	host, lport, err := net.SplitHostPort(addr)
	if err != nil || host == "" || lport == "" {
		return bad("the address is not host:port")
	}
	return ServicePort{Namespace: ns, Service: name, Port: int32(n)}, addr, nil
}

// Options configure a Proxy.
type Options struct {
	Client kubernetes.Interface
	// Namespace limits the Proxy to one namespace; empty means all.
	Namespace string
	// MappingFile, when set, receives the routes as JSON ([]Route) every
	// time they change, written atomically, for processes that are not
	// the Proxy's caller.
	MappingFile string
	// Host is the loopback address listeners bind; default 127.0.0.1.
	Host string
	// Pinned serves these Service ports on fixed addresses instead of
	// ports the kernel picks, so a process can be told the address before
	// the Proxy runs (agents get the principal's Service address on their
	// command line). Pinned listeners open before Run reports Ready and
	// stay open for the Proxy's life, even while their Service is absent:
	// the address is a promise to whoever was given it.
	Pinned map[ServicePort]string
	Logger *slog.Logger
}

// Proxy gives every TCP Service port a loopback listener and forwards each
// accepted connection to an endpoint the Router picks at accept time. When
// an endpoint leaves its Service's endpoints (its pod deleted, or a
// selector change such as an intercept's takeover), the connections
// proxied to it are closed, so long-lived clients reconnect and follow
// the new routing; connections to endpoints that stay are left alone.
type Proxy struct {
	opts   Options
	router *Router
	log    *slog.Logger
	kick   chan struct{}
	evict  chan struct{}

	mu        sync.Mutex
	listeners map[ServicePort]net.Listener
	conns     map[*proxied]struct{}
	ready     chan struct{}
	readyOnce sync.Once
}

// proxied is one accepted connection and the endpoint it was sent to.
type proxied struct {
	key      ServicePort
	endpoint string
	client   net.Conn
	upstream net.Conn
}

func (c *proxied) close() {
	c.client.Close()
	c.upstream.Close()
}

// New builds a Proxy; Run starts it.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	return &Proxy{
		opts:      opts,
		router:    NewRouter(RouterOptions{Client: opts.Client, Namespace: opts.Namespace, Logger: opts.Logger}),
		log:       opts.Logger,
		kick:      make(chan struct{}, 1),
		evict:     make(chan struct{}, 1),
		listeners: map[ServicePort]net.Listener{},
		conns:     map[*proxied]struct{}{},
		ready:     make(chan struct{}),
	}
}

// Router is the Proxy's routing table, for callers that want to dial a
// Service without a listener (outbound traffic by DNS name).
func (p *Proxy) Router() *Router { return p.router }

// Ready is closed once the first set of listeners is open.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Run serves until ctx ends, then closes every listener and proxied
// connection. It fails at once when a pinned address cannot be bound.
func (p *Proxy) Run(ctx context.Context) error {
	defer p.closeAll()
	pinned, err := p.listenPinned()
	if err != nil {
		return err
	}
	signal := func(ch chan struct{}) func() {
		return func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	if err := p.router.OnServiceChange(signal(p.kick)); err != nil {
		return err
	}
	// A Service change can move endpoints too (its ports, or the Service
	// gone), so it also triggers the eviction check.
	if err := p.router.OnServiceChange(signal(p.evict)); err != nil {
		return err
	}
	if err := p.router.OnEndpointsChange(signal(p.evict)); err != nil {
		return err
	}
	if err := p.router.Start(ctx); err != nil {
		return err
	}
	// Pinned listeners are bound from the start but accept only once the
	// caches have synced: until then the kernel holds early connections
	// in the backlog instead of the Proxy refusing them for want of a
	// route it does not know yet.
	for k, l := range pinned {
		go p.serve(ctx, k, l)
	}
	for {
		if err := p.reconcile(ctx); err != nil {
			p.log.Warn("service proxy: reconcile", "err", err)
		}
		p.readyOnce.Do(func() { close(p.ready) })
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-p.kick:
				break wait
			case <-p.evict:
				p.evictDeparted()
			}
		}
	}
}

// listenPinned binds the pinned addresses.
func (p *Proxy) listenPinned() (map[ServicePort]net.Listener, error) {
	keys := make([]ServicePort, 0, len(p.opts.Pinned))
	for k := range p.opts.Pinned {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePorts)
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[ServicePort]net.Listener{}
	for _, k := range keys {
		addr := p.opts.Pinned[k]
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("service proxy: listen for pinned %s at %s: %w", k, addr, err)
		}
		p.listeners[k] = l
		out[k] = l
		p.log.Info("service proxy: pinned route", "service", k.Namespace+"/"+k.Service, "port", k.Port, "address", l.Addr().String())
	}
	if len(keys) > 0 && p.opts.MappingFile != "" {
		return out, p.writeMappingLocked()
	}
	return out, nil
}

func (p *Proxy) pinned(k ServicePort) bool {
	_, ok := p.opts.Pinned[k]
	return ok
}

// Routes returns the current Service port → loopback address table.
func (p *Proxy) Routes() []Route {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.routesLocked()
}

func (p *Proxy) routesLocked() []Route {
	out := make([]Route, 0, len(p.listeners))
	for k, l := range p.listeners {
		out = append(out, Route{Namespace: k.Namespace, Service: k.Service, Port: k.Port, Address: l.Addr().String()})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return comparePorts(ServicePort{a.Namespace, a.Service, a.Port}, ServicePort{b.Namespace, b.Service, b.Port}) < 0
	})
	return out
}

func comparePorts(a, b ServicePort) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Service, b.Service); c != 0 {
		return c
	}
	return int(a.Port - b.Port)
}

// Addr is the loopback address serving port of Service namespace/name.
func (p *Proxy) Addr(namespace, name string, port int32) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.listeners[ServicePort{namespace, name, port}]
	if !ok {
		return "", false
	}
	return l.Addr().String(), true
}

func (p *Proxy) reconcile(ctx context.Context) error {
	svcs, err := p.router.Services()
	if err != nil {
		return err
	}
	want := map[ServicePort]bool{}
	for _, s := range svcs {
		for _, sp := range s.Spec.Ports {
			if sp.Protocol == "" || sp.Protocol == "TCP" {
				want[ServicePort{s.Namespace, s.Name, sp.Port}] = true
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := false
	for k, l := range p.listeners {
		if !want[k] && !p.pinned(k) {
			l.Close()
			delete(p.listeners, k)
			changed = true
		}
	}
	var errs []error
	for k := range want {
		if _, ok := p.listeners[k]; ok {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(p.opts.Host, "0"))
		if err != nil {
			errs = append(errs, fmt.Errorf("listen for %s: %w", k, err))
			continue
		}
		p.listeners[k] = l
		changed = true
		p.log.Info("service proxy: route", "service", k.Namespace+"/"+k.Service, "port", k.Port, "address", l.Addr().String())
		go p.serve(ctx, k, l)
	}
	if changed && p.opts.MappingFile != "" {
		errs = append(errs, p.writeMappingLocked())
	}
	return errors.Join(errs...)
}

func (p *Proxy) serve(ctx context.Context, k ServicePort, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			up, endpoint, err := p.router.dial(ctx, k.Namespace, k.Service, k.Port)
			if err != nil {
				p.log.Warn("service proxy: no backend", "service", k.Namespace+"/"+k.Service, "port", k.Port, "err", err)
				c.Close()
				return
			}
			pc := &proxied{key: k, endpoint: endpoint, client: c, upstream: up}
			p.mu.Lock()
			p.conns[pc] = struct{}{}
			p.mu.Unlock()
			// The endpoint may have left between the pick and the
			// registration, when no eviction could see this connection.
			if !p.stillRouted(pc) {
				pc.close()
			}
			netpipe.Splice(c, up)
			p.mu.Lock()
			delete(p.conns, pc)
			p.mu.Unlock()
		}()
	}
}

// stillRouted reports whether c's endpoint is still one of its Service
// port's endpoints.
func (p *Proxy) stillRouted(c *proxied) bool {
	eps, _ := p.router.Endpoints(c.key.Namespace, c.key.Service, c.key.Port)
	return slices.Contains(eps, c.endpoint)
}

// evictDeparted closes the proxied connections whose endpoint is no longer
// among their Service port's endpoints. kube-proxy leaves established TCP
// flows alone; here the endpoints are local processes whose connections
// would otherwise never move, and the clients that matter (agents' gRPC
// streams to the principal) hold one connection for hours: closing it is
// what makes an intercept's takeover, and its end, reach them.
func (p *Proxy) evictDeparted() {
	p.mu.Lock()
	byKey := map[ServicePort][]*proxied{}
	for c := range p.conns {
		byKey[c.key] = append(byKey[c.key], c)
	}
	p.mu.Unlock()
	for k, conns := range byKey {
		// An error means the Service or its port is gone: so are its
		// endpoints.
		eps, _ := p.router.Endpoints(k.Namespace, k.Service, k.Port)
		closed := map[string]int{}
		for _, c := range conns {
			if !slices.Contains(eps, c.endpoint) {
				c.close()
				closed[c.endpoint]++
			}
		}
		for ep, n := range closed {
			p.log.Info("service proxy: endpoint left, closed its connections", "service", k.Namespace+"/"+k.Service, "port", k.Port, "endpoint", ep, "connections", n)
		}
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.listeners {
		l.Close()
		delete(p.listeners, k)
	}
	for c := range p.conns {
		c.close()
	}
}

// writeMappingLocked writes the mapping file; p.mu must be held.
func (p *Proxy) writeMappingLocked() error {
	b, err := json.MarshalIndent(p.routesLocked(), "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.opts.MappingFile), ".routes-*")
	if err != nil {
		return fmt.Errorf("service proxy: mapping file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("service proxy: mapping file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("service proxy: mapping file: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.opts.MappingFile); err != nil {
		return fmt.Errorf("service proxy: mapping file: %w", err)
	}
	return nil
}

// ReadMapping reads a mapping file a Proxy wrote.
func ReadMapping(path string) ([]Route, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Route
	return out, json.Unmarshal(b, &out)
}
