package catalog

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// Labels scenarios carry. They are the same strings Ginkgo filters on, so
// `--label 'fast && !chaos'` means the same thing to the CLI and to
// `go test ./scenarios/ -ginkgo.label-filter=...`.
const (
	// LabelFast marks scenarios that finish in well under a minute.
	LabelFast = "fast"
	// LabelChaos marks scenarios that kill, restart or cut components.
	LabelChaos = "chaos"
	// LabelFleet marks scenarios about the principal and its agents.
	LabelFleet = "fleet"
	// LabelGitOps marks scenarios about what the sync engine does with Git.
	LabelGitOps = "gitops"
	// LabelIntercept marks intercept scenarios.
	LabelIntercept = "intercept"
	// LabelEmbeddedOnly marks scenarios that need the embedded provider:
	// components as local processes, the Git server on loopback.
	LabelEmbeddedOnly = "embedded-only"
	// LabelKindOnly marks scenarios that need kind; CI runs the embedded
	// suite with the filter `!kind-only`.
	LabelKindOnly = "kind-only"
	// LabelClusters marks scenarios that create and delete clusters (a
	// spoke added and removed). On embedded that takes seconds; on kind
	// every one is a node container booted and tether's image loaded, so
	// CI's kind run leaves them out (`!clusters`) and they run there by
	// hand: `tether scenario run fleet-reshape`.
	LabelClusters = "clusters"
)

// Scenario is one named scenario.
type Scenario struct {
	// Name is the contract: what users type, what CI reports.
	Name string
	// Description is one line: what the scenario proves.
	Description string
	Labels      []string
	// Timeout bounds the whole scenario, cleanup excluded.
	Timeout time.Duration
	// Steps returns the scenario's steps in order. It is called once per
	// run with that run's Env, so steps share state through the closure;
	// it must not touch the workbench itself (the runner announces every
	// step before the first runs).
	Steps func(e *Env) []Step
}

// Step is one named step of a scenario.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// HasLabel reports whether s carries label.
func (s Scenario) HasLabel(label string) bool { return slices.Contains(s.Labels, label) }

// Observer follows a run live: the CLI prints lines, the TUI updates its
// Scenarios screen, the Ginkgo suite writes to GinkgoWriter. Calls come
// from the goroutine running the scenario, one at a time.
type Observer interface {
	// ScenarioStarted announces a scenario and every step it will run.
	ScenarioStarted(scenario string, steps []string)
	StepStarted(scenario, step string)
	// StepDone ends a step; err is nil when it passed.
	StepDone(scenario, step string, took time.Duration, err error)
	// Log carries detail: command lines, what a step waits for.
	Log(scenario, msg string)
	ScenarioDone(r Result)
}

// Status is a scenario's verdict.
type Status string

// Verdicts.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// StepResult is one finished (or never reached) step.
type StepResult struct {
	Name     string
	Status   Status
	Duration time.Duration
	Err      string
}

// Result is one scenario's outcome.
type Result struct {
	Name     string
	Labels   []string
	Status   Status
	Duration time.Duration
	// Reason says why it failed or was skipped: the failing step's error,
	// which says what was expected, what was seen and where to look.
	Reason string
	// FailedStep names the step that failed.
	FailedStep string
	Steps      []StepResult
	// CleanupErrors are cleanups that failed; they do not fail the
	// scenario but are reported, since they may leave things behind.
	CleanupErrors []string
	// Logs are the files worth reading when it failed.
	Logs []string
}

// All returns every scenario, in the order a run selected by label
// (`scenario run --label ...`, the Ginkgo suite) takes them: cheap checks
// first, then chaos, then intercepts.
func All() []Scenario {
	all := []Scenario{
		fleetRollout(),
		hubAppCommands(),
		driftSelfHeal(),
		prune(),
		badManifest(),
		agentIsolation(),
		agentRestart(),
		principalRestart(),
		componentCrash(),
		networkPartition(),
		syncWhileDisconnected(),
		fleetReshape(),
		interceptGlobal(),
		interceptPersonal(),
		interceptOutbound(),
		interceptCrashCleanup(),
		interceptSample(),
		// Last: it moves the agents and the Git webhook to a principal of
		// its own, the longest detour from a fleet at rest.
		debugPrincipal(),
	}
	return all
}

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range All() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Names lists every scenario's name, sorted.
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

// Select returns the scenarios named (in the order given), or every
// scenario when names is empty, then keeps those matching labelFilter (a
// Ginkgo label expression such as "fast && !chaos"; empty keeps all).
// An unknown name is an error listing the known ones.
func Select(names []string, labelFilter string) ([]Scenario, error) {
	var picked []Scenario
	if len(names) == 0 {
		picked = All()
	}
	var unknown []string
	seen := map[string]bool{}
	for _, n := range names {
		s, ok := Lookup(n)
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		if !seen[n] {
			seen[n] = true
			picked = append(picked, s)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no scenario named %s; known scenarios: %s (see `tether scenario list`)",
			strings.Join(quote(unknown), ", "), strings.Join(Names(), ", "))
	}
	if strings.TrimSpace(labelFilter) == "" {
		return picked, nil
	}
	match, err := types.ParseLabelFilter(labelFilter)
	if err != nil {
		return nil, fmt.Errorf("label expression %q: %v (labels are combined with &&, ||, ! and parentheses)", labelFilter, err)
	}
	var out []Scenario
	for _, s := range picked {
		if match(s.Labels) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario matches the label expression %q; labels in use: %s", labelFilter, strings.Join(labelsInUse(), ", "))
	}
	return out, nil
}

func labelsInUse() []string {
	set := map[string]bool{}
	for _, s := range All() {
		for _, l := range s.Labels {
			set[l] = true
		}
	}
	var out []string
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
