// Package cluster is the workbench's public face for clusters: bring a hub
// and its spokes up, report their state, tear them down.
//
// It hides where clusters come from behind one internal Provider interface
// with a folder per backend (embedded processes, kind in Docker, existing
// kubeconfig contexts), as kind's pkg/cluster does. Commands and the terminal
// UI call this package and nothing below it.
package cluster
