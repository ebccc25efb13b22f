// Package embedded provides clusters made of local processes: a real etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler per cluster,
// and kwok playing the nodes so pods go Running without containers.
//
// It is the provider for machines without a Docker engine (CI, laptops
// without Docker) and what tether's own tests run on: the API semantics
// (watches, server-side apply, RBAC, garbage collection, rollouts) are the
// real ones. The binaries are compiled from pinned Go modules on first use
// and cached by version.
package embedded
