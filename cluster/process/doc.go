// Package process starts and stops the long-running helper processes of a
// workbench (control-plane binaries, the principal, agents, the Git
// server): detached so they outlive the command that started them, recorded
// by pid and start time so a recycled pid is never taken for one of ours,
// and stopped by process group.
package process
