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
	"sort"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/tunnel"
)

// Route is one Service port and the loopback address that serves it.
type Route struct {
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	Port      int32  `json:"port"`
	Address   string `json:"address"`
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
	Host   string
	Logger *slog.Logger
}

// Proxy gives every TCP Service port a loopback listener and forwards each
// accepted connection to an endpoint the Router picks at accept time, so a
// selector change re-routes new connections while established ones keep
// their endpoint (as kube-proxy does).
type Proxy struct {
	opts   Options
	router *Router
	log    *slog.Logger
	kick   chan struct{}

	mu        sync.Mutex
	listeners map[routeKey]net.Listener
	ready     chan struct{}
	readyOnce sync.Once
}

type routeKey struct {
	namespace, service string
	port               int32
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
		listeners: map[routeKey]net.Listener{},
		ready:     make(chan struct{}),
	}
}

// Router is the Proxy's routing table, for callers that want to dial a
// Service without a listener (outbound traffic by DNS name).
func (p *Proxy) Router() *Router { return p.router }

// Ready is closed once the first set of listeners is open.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Run serves until ctx ends, then closes every listener.
func (p *Proxy) Run(ctx context.Context) error {
	if err := p.router.OnServiceChange(func() {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}); err != nil {
		return err
	}
	if err := p.router.Start(ctx); err != nil {
		return err
	}
	defer p.closeAll()
	for {
		if err := p.reconcile(ctx); err != nil {
			p.log.Warn("service proxy: reconcile", "err", err)
		}
		p.readyOnce.Do(func() { close(p.ready) })
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		}
	}
}

// Routes returns the current Service port → loopback address table.
func (p *Proxy) Routes() []Route {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Route, 0, len(p.listeners))
	for k, l := range p.listeners {
		out = append(out, Route{Namespace: k.namespace, Service: k.service, Port: k.port, Address: l.Addr().String()})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Port < b.Port
	})
	return out
}

// Addr is the loopback address serving port of Service namespace/name.
func (p *Proxy) Addr(namespace, name string, port int32) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.listeners[routeKey{namespace, name, port}]
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
	want := map[routeKey]bool{}
	for _, s := range svcs {
		for _, sp := range s.Spec.Ports {
			if sp.Protocol == "" || sp.Protocol == "TCP" {
				want[routeKey{s.Namespace, s.Name, sp.Port}] = true
			}
		}
	}
	p.mu.Lock()
	changed := false
	for k, l := range p.listeners {
		if !want[k] {
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
			errs = append(errs, fmt.Errorf("listen for %s/%s:%d: %w", k.namespace, k.service, k.port, err))
			continue
		}
		p.listeners[k] = l
		changed = true
		p.log.Info("service proxy: route", "service", k.namespace+"/"+k.service, "port", k.port, "address", l.Addr().String())
		go p.serve(ctx, k, l)
	}
	p.mu.Unlock()
	if changed && p.opts.MappingFile != "" {
		errs = append(errs, p.writeMapping())
	}
	return errors.Join(errs...)
}

func (p *Proxy) serve(ctx context.Context, k routeKey, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			up, err := p.router.Dial(ctx, k.namespace, k.service, k.port)
			if err != nil {
				p.log.Warn("service proxy: no backend", "service", k.namespace+"/"+k.service, "port", k.port, "err", err)
				c.Close()
				return
			}
			tunnel.Splice(c, up)
		}()
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.listeners {
		l.Close()
		delete(p.listeners, k)
	}
}

func (p *Proxy) writeMapping() error {
	b, err := json.MarshalIndent(p.Routes(), "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.opts.MappingFile), ".routes-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p.opts.MappingFile)
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
