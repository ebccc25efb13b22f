// Package protocol is the wire contract between the principal (hub) and
// its agents (spokes): one long-lived gRPC bidirectional stream per agent,
// opened by the agent, carrying JSON-encoded Messages.
//
// Delivery is at-least-once with cumulative acknowledgements: every
// message that matters carries a sequence number and stays in the sender's
// Outbox until the peer acknowledges it (after acting on it), and is sent
// again on the next connection if the stream breaks first. Receivers make
// that safe: specs and statuses are states (applying one twice changes
// nothing) and one-shot intents carry IDs (an operation runs once however
// often it arrives). State messages with the same key coalesce to the
// latest while unsent; intents never coalesce, so a sync request cannot be
// swallowed by a later status — the argocd-agent defect this avoids.
//
// Sequence numbers and acks mean something only on the stream that gave
// them out. Each stream works on the outbox through its own cursor, and
// opening a stream's cursor voids the one before, so the goroutines of a
// stream being replaced can neither take an entry of the new stream nor
// remove one with a late ack. Serve returns only after the message being
// handled was handled and hands on none after, and a new session starts
// only once the previous one of that peer has ended (the agent runs one
// at a time; the principal ends and waits for an agent's old session),
// so one peer's messages are never handled by two sessions at once.
//
// A message the receiver can never handle (the API server refuses it as
// invalid or too large) does not block the ones behind it: the handler
// marks the error with Reject, and the receiver answers with a Nack that
// names it and an Ack that covers it, records why where a user sees it,
// and goes on; a frame that cannot be decoded past its sequence number
// (a newer peer changed a field) is nacked the same way. The sender drops
// the refused entry and logs its kind and name. Nack came after the first release; a peer that does not know it
// reads the Ack alone, so it drops the message the same way. Errors that
// may pass (an API server restarting) still end the session unacknowledged,
// so the message comes again.
//
// One-shot requests made on the hub come back as status: a sync operation
// as the status's operationState (the principal then clears the hub's
// operation), a refresh (the hub copy's refresh annotation, sent down as
// AppRefresh) as the refresh's ID in StatusUpdate.Refreshed (the principal
// then clears the annotation, if it still holds that ID). Either way the
// user who asked on the hub sees the answer on the hub's copy. An
// operation the spoke cannot run (its copy of the Application is gone)
// is answered the same way, as a Failed operationState with the reason,
// sent as an intent so no later status of that Application replaces it
// unsent; the principal keeps a finished operationState on the hub's copy
// until a newer one replaces it.
//
// For metrics, the Outbox stamps every message with when it was queued
// (Message.Queued, optional: an older peer ignores it) and Observe wraps a
// stream to tell an Observer what was sent, acknowledged, refused, received
// and handled, with the queued times propagation delays are measured from.
//
// Hello opens every stream and carries checksums of what the agent holds,
// so both sides resync after a restart or a partition instead of trusting
// memory. Mode is part of Hello so autonomous mode (the spoke as source of
// truth, the hub a read-only mirror) can be added as new message kinds
// without changing the existing ones.
//
// The stream runs over mutual TLS with certificates of the workbench CA.
// Both ends read their material from a TLS folder of one layout
// (ReadTLSDir) and parse it the same way (KeyPairAndCA); the principal and
// the agent each build their side's tls.Config from it.
package protocol
