// Package gitops is the GitOps system tether runs: the Application API, the
// sync engine an agent runs on its spoke, the embedded Git server, and (as
// they land) the principal and agents that carry Applications between hub
// and spokes.
package gitops
