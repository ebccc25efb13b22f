// Package kind provides clusters as kind clusters in Docker.
//
// It is the workbench's default when a Docker engine answers, because kind
// gives real nodes: real container runtimes, real networking and real image
// pulls, which the embedded provider only imitates. All clusters share kind's
// Docker network, so spokes reach the hub through the hub node's container
// name on that network rather than through the host port.
//
// Cluster x of a workbench is kind cluster tether-<id>-x, the id being a hash
// of the workbench's state folder, so workbenches never adopt or delete each
// other's clusters, and `down` finds clusters an interrupted `up` left even
// when no record lists them. The node image is the user's (--node-image),
// else kind's default, else, where that cannot be pulled, one tether builds
// offline (package nodeimage); it is chosen once per run.
//
// The kind Go library is used instead of the kind binary so that tether needs
// nothing installed but Docker, and so that kind's output goes to tether's
// logger rather than to the user's terminal. kind is kept from touching the
// user's kubeconfig: it writes to a private file in the workbench's state
// folder, and tether keeps its own admin kubeconfig next to it.
package kind
