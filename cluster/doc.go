// Package cluster is the workbench's public face for clusters: bring a hub
// and its spokes up, report their state, tear them down.
//
// It hides where clusters come from behind one internal Provider interface
// with a folder per backend (embedded processes, kind in Docker, existing
// kubeconfig contexts), as kind's pkg/cluster does. Commands and the terminal
// UI call this package and nothing below it.
//
// What differs between providers is answered by the provider, not told by
// its name: every Cluster carries Traits (its components run as local
// processes or as pods, it has an image store, its nodes run containers,
// its Services need tether's service proxy, it is the user's own), derived
// from the provider each time so that older records answer them too, and
// ProviderTraits answers them for a record that only names a provider.
//
// Up (and AddSpoke, RemoveSpoke) run one reconcile, a list of named steps
// over a shared run in the manner of kind's create actions (reconcile.go).
// Files by concern: workbench.go (options, providers), clusters.go
// (Cluster, Traits), reconcile.go, down.go, status.go, spoke.go,
// namespace.go (tether's namespace), images.go (node and component
// images), kubeconfig.go, config.go, doctor.go, errors.go (the causes
// errors carry, for the command and the UI to say what to type or press:
// the package names no flag and no tether command).
package cluster
