// Package intercept is the workbench half of tether's Telepresence-style
// intercepts: it takes a Service's traffic over (by swapping its selector to
// a traffic-agent, with the original saved in an annotation), carries the
// intercepted connections over one yamux session to a process on this
// machine, runs the outbound HTTP/CONNECT proxy through which that process
// reaches in-cluster Services by name, renews the Lease that keeps the
// takeover alive, and undoes everything on Stop, Sweep and Uninstall.
//
// See docs/intercept.md for why it is built this way.
package intercept
