// Package principal is the hub side of the GitOps system: a gRPC server that
// agents dial (the hub never connects to a spoke). It mirrors the
// Applications in hub namespace <spoke> to that spoke's agent, writes the
// status the agent reports back onto the hub's Applications, forwards
// one-shot sync operations, refreshes asked on the hub (the refresh
// annotation, removed once the agent's answer is written) and push-driven
// refreshes, and keeps an Agent object per spoke on the hub so the fleet
// is visible with kubectl.
//
// An agent is known by the client certificate it presents (issued by the
// workbench CA, organisation "tether:agents"); it can only ever see and
// change the hub namespace named after it. A stream must say Hello within
// Options.HelloTimeout or it is closed. One agent has one session at a
// time: a new stream ends the old session and starts once it has ended.
//
// A hub that cannot be reached when the principal starts is waited for
// (retried with backoff) rather than given up on: the hub's API server may
// only be restarting, and nothing would start the principal again. Agents
// are served once the hub has answered.
//
// With Options.HTTPListen the principal serves Prometheus metrics on
// /metrics: connections and reconnects per agent, outbox depths, messages
// each way with their acks and nacks, operations, status writes, and
// propagation delays hub to spoke and back, the latest of which it also
// writes on each Agent object with the restarts its agent reported.
//
// A status write that fails in a way that may pass is retried per
// Application after waits that double up to 30 s. A status too large for
// the hub is shortened (resources and history cut, a StatusTruncated
// condition says so) and one the hub refuses for good is dropped with a
// DeliveryError condition on the hub's copy; so is a message the agent
// nacked, since the spoke may have no copy to carry the condition up.
package principal
