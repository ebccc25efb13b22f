// Package agent is the spoke side of the GitOps system. It dials the
// principal (the hub never connects to a spoke), mirrors the Applications
// the hub holds for this spoke into the spoke's tether-system namespace,
// runs the sync engine on them, and reports their status back.
//
// The engine runs whether or not the principal is reachable: while
// disconnected the spoke keeps syncing from its local copy, and on
// reconnect a checksum exchange brings both sides level again.
package agent
