package trafficagent

import (
	"maps"
	"net/http"
	"slices"

	"github.com/tether-dev/tether/intercept/record"
)

// Routes of the connections a port listener accepted. A connection is
// routed once, when it arrives; these name where it went, so that
// reconcile can tell which ones a new connection would no longer follow.
const (
	// routeOriginal: spliced whole to an original pod (no intercept on
	// the port, or its workbench not attached: fail open).
	routeOriginal = "original"
	// routeHTTP: handed to the HTTP router, which routes each request by
	// the personal intercepts of the port at that moment.
	routeHTTP = "http"
	// routeCarriedPrefix + name: carried whole to the workbench of global
	// intercept name.
	routeCarriedPrefix = "intercept/"
)

// lookup returns the intercepts of the Service ports a listener serves:
// the global one, or the personal ones.
func (a *Agent) lookup(ports []record.Port) (global *route, personal []*route) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.routes {
		if !slices.ContainsFunc(ports, func(p record.Port) bool { return p.Port == r.rec.Port }) {
			continue
		}
		if r.rec.Global() {
			// Start refuses a global intercept beside others on a
			// port; if two raced past that, the older one wins.
			if global == nil || r.rec.Created.Before(global.rec.Created) || (r.rec.Created.Equal(global.rec.Created) && r.rec.Name < global.rec.Name) {
				global = r
			}
			continue
		}
		personal = append(personal, r)
	}
	return global, personal
}

// match picks the personal intercept a request belongs to: among those
// whose headers it carries and whose workbench is attached, the one with
// the most headers (the most specific), then by name.
func (a *Agent) match(ports []record.Port, h http.Header) *route {
	_, personal := a.lookup(ports)
	var best *route
	for _, r := range personal {
		if !matches(h, r.rec.Headers) || !a.attached(r.rec.Name) {
			continue
		}
		if best == nil || len(r.rec.Headers) > len(best.rec.Headers) || (len(r.rec.Headers) == len(best.rec.Headers) && r.rec.Name < best.rec.Name) {
			best = r
		}
	}
	return best
}

// routeFor is the route a new connection of ports gets now, and the
// global intercept that carries it, if any.
func (a *Agent) routeFor(ports []record.Port) (string, *route) {
	global, personal := a.lookup(ports)
	switch {
	case global != nil && a.attached(global.rec.Name):
		return routeCarriedPrefix + global.rec.Name, global
	case global != nil, len(personal) == 0:
		// Fail open, or nothing intercepted on the port.
		return routeOriginal, nil
	default:
		return routeHTTP, nil
	}
}

// reconcile closes every connection whose route is no longer the one a
// new connection of its port would get, so that its client reconnects
// and follows the current routing, as the embedded service proxy does
// for connections to an endpoint that left its Service. Without it a
// long-lived client would stay where it first landed: a gRPC stream that
// reconnected through the agent when another port's intercept took the
// Service over would be passed through to the original pods for ever,
// even once its own port is intercepted. It closes:
//   - pass-through connections, when a global intercept of their port has
//     its workbench attached, or personal intercepts route the port
//     (their requests would otherwise never be looked at);
//   - HTTP router connections, when a global intercept takes the port;
//   - connections carried to an intercept's workbench, when that intercept
//     is no longer the port's global one (stopped, expired) or its
//     workbench detached.
//
// HTTP router connections are kept when the port's last personal
// intercept goes: each request is routed on its own, so theirs already
// reach the original pods.
func (a *Agent) reconcile() {
	type batch struct {
		port        int32
		route, want string
		conns       []*trackedConn
	}
	var closing []batch
	a.connsMu.Lock()
	for _, pc := range a.listeners {
		want, _ := a.routeFor(pc.ports)
		byRoute := map[string][]*trackedConn{}
		for t := range pc.conns {
			if t.route == want || (t.route == routeHTTP && want == routeOriginal) {
				continue
			}
			byRoute[t.route] = append(byRoute[t.route], t)
			delete(pc.conns, t)
		}
		for _, r := range slices.Sorted(maps.Keys(byRoute)) {
			closing = append(closing, batch{port: pc.ports[0].Port, route: r, want: want, conns: byRoute[r]})
		}
	}
	a.connsMu.Unlock()
	for _, b := range closing {
		for _, t := range b.conns {
			t.close()
		}
		a.log.Info("closed connections whose route changed", "port", b.port, "route", b.route, "now", b.want, "count", len(b.conns))
	}
}

func matches(h http.Header, want map[string]string) bool {
	for k, v := range want {
		if h.Get(k) != v {
			return false
		}
	}
	return true
}
