// Package progress reports the steps of long operations.
//
// Libraries never print: the cluster and gitops packages take a Reporter and
// announce steps through it. The CLI renders steps as plain lines (fit for CI
// logs and pipes); the terminal UI renders the same steps with spinners.
package progress
