// Package agent is the traffic-agent: the in-cluster half of intercepts,
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
// An intercept whose Lease is not renewed for its duration (crash,
// SIGKILL, lost laptop) loses its routes while the others keep working;
// when no intercept is left the agent restores the Service from the
// annotation itself, removes its objects and exits. In a pod it leaves
// that pod to the garbage collector (it is a dependent of the agent's
// Lease, which the agent deletes last): deleting it first would have the
// kubelet kill the agent mid-cleanup.
package agent
