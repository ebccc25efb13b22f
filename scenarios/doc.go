// Package scenarios holds tether's scripted flows as Ginkgo suites: the same
// steps a contributor runs by hand, driven through the real tether binary
// against real clusters, so CI proves what the README promises.
//
// Labels select sets: "fast" for checks that need no cluster, "embedded" for
// the flows on the embedded provider, "kind-only" for flows that need a
// Docker engine (task e2e:kind).
//
// The named scenarios (fleet-rollout, prune, network-partition, ...) are
// defined once in scenarios/catalog; catalog_test.go runs each as an It on
// one shared workbench, as `tether scenario run` does from the CLI.
//
// Every suite drives its own isolated workbench through a harness.Driver
// made by suite_test.go (newWorkbench, or upWorkbench, which also takes it
// down after), so suites share the steps of bringing one up and tearing it
// down; tmux_test.go drives the terminal UI the same way for the UI suites.
package scenarios
