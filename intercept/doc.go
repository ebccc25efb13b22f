// Package intercept is the workbench half of tether's Telepresence-style
// intercepts. Start attaches an intercept to the Service's traffic-agent,
// installing the agent and taking the Service over (swapping its selector,
// the original saved in an annotation) when it is the Service's first
// intercept; it carries the intercepted connections over this workbench's
// own yamux session to a process on this machine, runs the outbound
// HTTP/CONNECT proxy through which that process reaches in-cluster
// Services by name, and renews the intercept's Lease, which is also where
// the agent reads the intercept's port and headers from.
//
// One agent serves every intercept of a Service: personal intercepts with
// different headers share a port, intercepts of different ports coexist,
// and each is held by its own workbench. Stop ends one intercept; the last
// one restores the Service and removes the agent. List, StopByName, Sweep
// and Uninstall act on a cluster from any process. On embedded clusters
// the agent is a local process (ExecAgent) reached over loopback;
// elsewhere it is a Pod of tether's image (intercept/agentpod's Launcher as
// Options.Launch) reached through the API server's port-forward
// (intercept/agentpod's PortForward.Dial as Options.DialAgent).
//
// StartOnWorkbench is that, on a cluster of a cluster.Workbench, as both
// `tether intercept start` and the terminal UI ask for it: it decides from
// the cluster's provider how the agent runs and is reached, sweeps the
// leftovers of earlier intercepts, and opens a way to the intercepted
// Service from this machine (the embedded service proxy's route, or a
// port-forward it records for other processes, RecordReach). ReachOf
// reads that way back for any intercept, whichever process holds it.
//
// See docs/intercept.md for why it is built this way.
//
// Files by concern: intercept.go (Start, Stop, Wait), spec.go (what a
// user asks for, checked against the Service and its live intercepts),
// lease.go (the intercept's Lease, renewed from creation), attach.go
// (finding or installing the Service's traffic-agent and taking the
// Service over), serve.go (the tunnel's streams and the outbound proxy),
// manage.go (list, stop, sweep, uninstall), env.go (the workload's
// environment for intercept run), workbench.go (StartOnWorkbench: the
// provider-specific wiring), reach.go (where this machine reaches an
// intercepted Service), errors.go (the causes errors carry; a FieldError
// names a Request field in words, and the command names it by its flag).
package intercept
