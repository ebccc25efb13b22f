// Package trafficagent is the traffic-agent: the in-cluster half of intercepts,
// one per intercepted Service, serving every intercept of it.
//
// It serves every port of the taken-over Service. It reads the Service's
// intercepts from their Leases: a port's connections go through the
// session of the workbench holding a global intercept; for personal
// intercepts, goproxy routes each HTTP request by its headers to the
// matching intercept's workbench, the rest to the original pods. Ports
// without an intercept, and any connection whose workbench is not
// attached, go to the original pods, so an intercept fails open per
// connection. The agent also dials outbound connections for the
// workbenches from inside the cluster, and writes per-intercept counters
// on its own Lease.
//
// A connection is routed when it arrives, and keeps that route only while
// a new connection of its port would get the same one: when a port's
// routing changes (a global intercept's workbench attaches, the first
// personal intercept starts, an intercept is stopped or expires) the
// agent closes the connections of that port that no longer follow it, so
// their clients reconnect and follow the new routing, as the embedded
// service proxy does for endpoints leaving a Service. Without that, a
// gRPC stream that reconnected through the agent when another port's
// intercept took the Service over would stay on the original pods even
// after its own port is intercepted.
//
// An intercept whose Lease is not renewed for its duration (crash,
// SIGKILL, lost laptop) loses its routes while the others keep working;
// when no intercept is left the agent restores the Service from the
// annotation itself, removes its objects and exits. In a pod it leaves
// that pod to the garbage collector (it is a dependent of the agent's
// Lease, which the agent deletes last): deleting it first would have the
// kubelet kill the agent mid-cleanup.
//
// Files by concern: agent.go (Run: set-up, its pod, clean-up), state.go
// (the intercepts' Leases, the agent's own Lease, counters), sessions.go
// (the workbenches' tunnel sessions and outbound dials), routing.go (which
// intercept a connection or request belongs to), forward.go (the port
// listeners and the connections they carry).
package trafficagent
