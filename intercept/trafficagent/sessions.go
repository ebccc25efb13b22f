package trafficagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/tunnel"
)

// acceptSessions keeps the newest authenticated session per intercept: a
// workbench that reconnects replaces its old session. Only intercepts with
// a Lease get one, and only the Lease's holder (as the workbench presents
// it) replaces a live session.
func (a *Agent) acceptSessions(ctx context.Context, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			// Refreshing before the handshake's OK means the workbench's
			// Lease (created before it connects) is routed once it is
			// told OK.
			// Only an intercept with a Lease gets a session: a
			// workbench naming anything else would be stored under a
			// name nothing routes to (or that a later Lease of another
			// developer would inherit). Nor does a workbench that is
			// not the Lease's holder take its session over.
			s, name, err := tunnel.Server(c, a.opts.Token, func(name, holder string) error {
				if _, err := a.refresh(ctx); err != nil {
					a.log.Warn("read intercept leases", "err", err)
				}
				a.mu.Lock()
				defer a.mu.Unlock()
				r, ok := a.routes[name]
				if !ok {
					return fmt.Errorf("no intercept %s", name)
				}
				owner := r.rec.Holder
				switch {
				case holder != "" && owner != "" && holder != owner:
					return fmt.Errorf("intercept %s is held by %s", name, owner)
				case holder == "" && owner != "" && a.sessions[name] != nil && !a.sessions[name].IsClosed():
					// A workbench that presents no holder cannot
					// show it is the one already attached.
					return fmt.Errorf("intercept %s already has its workbench attached", name)
				}
				return nil
			}, a.log)
			if errors.Is(err, io.EOF) {
				// Closed before sending a byte: the kubelet's TCP
				// readiness probe, every second in a pod. Not worth a
				// warning each time.
				a.log.Debug("control connection closed before the handshake", "remote", c.RemoteAddr().String())
				return
			}
			if err != nil {
				a.log.Warn("workbench session refused", "remote", c.RemoteAddr().String(), "err", err)
				return
			}
			a.mu.Lock()
			old := a.sessions[name]
			a.sessions[name] = s
			if tr := a.trs[name]; tr != nil {
				tr.CloseIdleConnections()
			}
			a.mu.Unlock()
			if old != nil {
				old.Close()
			}
			a.log.Info("workbench attached", "intercept", name)
			// A global intercept routes its port only once its
			// workbench is attached: the connections passed through
			// until now (the ones that reconnected when another
			// port's intercept took the Service over) must move.
			a.reconcile()
			for {
				st, err := s.AcceptStream()
				if err != nil {
					a.mu.Lock()
					if a.sessions[name] == s {
						delete(a.sessions, name)
					}
					a.mu.Unlock()
					a.log.Info("workbench detached", "intercept", name, "err", err)
					return
				}
				go tunnel.ServeDial(ctx, st, a.dialOutbound, a.log)
			}
		}()
	}
}

func (a *Agent) dialOutbound(ctx context.Context, addr string) (net.Conn, error) {
	if a.router != nil {
		if _, _, _, err := svcproxy.ParseServiceAddress(addr, a.rec.Namespace); err == nil {
			return a.router.DialAddress(ctx, addr, a.rec.Namespace)
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// openWorkbench opens a stream to intercept name's workbench for one
// intercepted connection.
func (a *Agent) openWorkbench(name string) (net.Conn, error) {
	a.mu.Lock()
	s, r := a.sessions[name], a.routes[name]
	a.mu.Unlock()
	if s == nil || r == nil {
		return nil, fmt.Errorf("workbench of intercept %s not attached", name)
	}
	st, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	r.count.conns.Add(1)
	return st, nil
}

func (a *Agent) transport(name string) *http.Transport {
	a.mu.Lock()
	defer a.mu.Unlock()
	tr := a.trs[name]
	if tr == nil {
		tr = &http.Transport{
			DialContext:         func(context.Context, string, string) (net.Conn, error) { return a.openWorkbench(name) },
			MaxIdleConnsPerHost: 16,
		}
		a.trs[name] = tr
	}
	return tr
}
