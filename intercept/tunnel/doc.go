// Package tunnel is the wire between the workbench and a traffic-agent: one
// TCP connection (plain loopback on embedded clusters, a Kubernetes
// port-forward on kind) carrying a yamux session, so every intercepted
// connection and every outbound dial is a cheap stream instead of a new
// port-forward, and both directions share one authenticated link.
//
// Streams the agent opens carry an intercepted connection: the workbench
// dials its local process and splices. Streams the workbench opens start
// with a one-line dial request ("DIAL host:port\n"), answered by "OK\n" or
// "ERR reason\n", then carry bytes: that is outbound access to the cluster.
package tunnel
