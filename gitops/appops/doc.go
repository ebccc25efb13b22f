// Package appops is what a user does with Applications — list, get, sync,
// refresh, diff — and the waits for the answers, written once for the
// `tether app` commands and the terminal UI so the two cannot drift apart
// (they did: the CLI diffed a hub Application against the hub).
//
// Where an Application runs decides where each request goes. On a spoke
// (or any cluster running the engine itself) everything happens in that
// cluster. On the hub an Application lives in the namespace named after its
// spoke and runs on the spoke: the hub keeps a copy whose status the
// spoke's agent reports. A sync (the operation field) or a refresh (the
// refresh annotation) asked on the hub's copy travels through the
// principal to the agent, which relays it to the spoke's engine, and the
// answer comes back as the hub copy's status (operationState, reconciledAt)
// with the request cleared; the waits here watch the hub's copy for that,
// so they answer in the time the spoke takes. A diff needs the live
// objects, which only the spoke has: it reads the spoke's own copy (in
// tether-system) and the spoke's API server, with the workbench's
// credentials.
//
// Which cluster is the hub comes from the workbench's record: a Client is
// told the workbench and which of its clusters it works on
// (ClusterOfContext maps a kubeconfig context to one). A cluster the
// workbench does not know is treated as a spoke.
package appops
