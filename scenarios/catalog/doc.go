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
//
// Files by concern, so a scenario is found by its name: each
// *_scenario.go or *_scenarios.go file holds the definitions it names
// (sync_scenarios.go: fleet-rollout, drift-self-heal, prune, bad-manifest;
// outage_scenarios.go: agent-restart, principal-restart, network-partition,
// sync-while-disconnected; reshape_scenario.go: fleet-reshape;
// intercept_scenarios.go: the intercepts of the echo "shop"). catalog.go is
// the list and selection, runner.go and env.go run them, helpers.go holds
// the checks and actions several scenarios share, kind.go and kindlog.go
// the kind provider's side of them, junit.go the report.
package catalog
