// Package agent is the traffic-agent: the in-cluster half of an intercept.
//
// It serves every port of the taken-over Service. The intercepted port's
// connections go through the workbench's yamux session to the laptop (all
// of them for a global intercept; for a personal one, goproxy routes each
// HTTP request by its headers, the rest to the original pods); the other
// ports, and any connection while no workbench is attached, go to the
// original pods, so an intercept fails open per connection. The agent also
// dials outbound connections for the workbench from inside the cluster.
//
// It watches the intercept's Lease: when the workbench stops renewing it
// (crash, SIGKILL, lost laptop) for longer than the lease duration, the
// agent restores the Service from the annotation itself and exits.
package agent
