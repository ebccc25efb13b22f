// Package agent is the spoke side of the GitOps system. It dials the
// principal (the hub never connects to a spoke), mirrors the Applications
// the hub holds for this spoke into the spoke's tether-system namespace,
// runs the sync engine on them, and reports their status back. Syncs and
// refreshes asked on the hub reach the engine as they would from a user on
// the spoke (the operation field, the refresh annotation), and their
// answers go back up with the status; an operation for an Application the
// spoke does not have is answered as failed, with the reason, not dropped.
// A message the spoke's API server refuses (invalid, denied by admission,
// too large) is nacked rather than retried for ever, so the messages
// behind it still arrive; why is kept as a DeliveryError condition on the
// spoke's copy, which reaches the hub with its status. Failures that may
// pass end the stream unacknowledged and the message comes again.
//
// MetricsHandler serves the agent's Prometheus metrics (connections,
// messages each way, outbox depth, restarts, propagation delays); the
// agent says in Hello how often its process restarted, as the workbench's
// supervisor (TETHER_RESTARTS) or the kubelet (its Pod's restartCount)
// counted.
//
// The engine runs whether or not the principal is reachable: while
// disconnected the spoke keeps syncing from its local copy, and on
// reconnect a checksum exchange brings both sides level again.
package agent
