// Package catalog holds the one definition of every named scenario: a
// name, a one-line description, labels that select sets of scenarios
// (fast, chaos, intercept, embedded-only, kind-only, ...), and named steps
// that drive a running workbench the way a user does — the tether binary
// and client-go against the workbench's kubeconfig.
//
// The same definitions run from `tether scenario run`, from the Ginkgo
// suite in scenarios/catalog_test.go and from the TUI: a Runner brings a
// workbench up (or reuses one), runs the chosen scenarios in order,
// reports each step to an Observer as it starts and ends, and returns a
// Result per scenario that says what failed and where to look. WriteJUnit
// turns results into a JUnit XML report for CI systems.
//
// A scenario cleans up what it created (Env.Cleanup); the workbench
// itself belongs to the runner.
package catalog
