// Package gitserver is the Git server the workbench runs next to its clusters.
//
// Scenarios need a Git remote they fully control: they seed a sample
// application, push changes (a replica bump, a broken manifest) and expect the
// agents on the spokes to pick them up. A hosted forge would make the harness
// depend on the network and on credentials, and a git daemon binary would make
// it depend on the host. This package instead serves bare repositories from a
// folder (<root>/<name>.git) over Git's smart HTTP protocol, in-process, on top
// of go-git's server-side building blocks, so any Git client (go-git, the git
// CLI, Argo CD's repo-server) can clone, fetch and push.
//
// Every accepted ref update becomes a PushEvent, handed to an in-process
// callback and POSTed to webhooks, so controllers can react to a push instead
// of polling.
//
// # What go-git's server side does and does not do
//
// go-git v5 ships transport/server, a transport-independent implementation of
// upload-pack and receive-pack, but no HTTP front end. Its limits shaped this
// package:
//
//   - upload-pack answers every request with a packfile and advertises only
//     ofs-delta and agent. Over stateless HTTP the git CLI negotiates in rounds
//     (16 "have" lines, then growing batches, each without "done") and
//     expects ACK/NAK-only answers in between. This package therefore runs the
//     negotiation itself with multi_ack_detailed and only hands the final
//     round (wants plus the common haves) to go-git to build the pack.
//   - receive-pack stores the packfile without resolving deltas against
//     objects already in the repository, so thin packs (which the git CLI
//     sends by default) cannot be stored. The advertisement carries "no-thin".
//   - receive-pack does not compare a command's old value with the ref it
//     updates, and implements neither atomic pushes nor push options. This
//     package checks old values itself under a per-repository lock (a stale
//     update is reported as "ng <ref> stale info") and does not advertise
//     atomic, push-options, side-band-64k, report-status-v2 or quiet, so
//     clients never ask for them.
//   - Shallow fetches and partial clones (filter) are not supported; neither
//     capability is advertised.
//   - Only protocol v0 is spoken. Clients that ask for v2 through the
//     Git-Protocol header fall back to v0, as the protocol allows.
package gitserver
