// Package state records what a workbench created: its clusters, the
// processes and ports of embedded clusters, and where their kubeconfigs live.
//
// The record is what lets a later `tether up` reattach instead of starting
// over, `tether status` report a dead process, and `tether down` stop exactly
// what tether started (by pid and process start time, so a recycled pid is
// never signalled).
package state
