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
package scenarios
