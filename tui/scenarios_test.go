package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleScenarios() []ScenarioInfo {
	return []ScenarioInfo{
		{Name: "fleet-rollout", Description: "a commit reaches every spoke"},
		{Name: "drift-self-heal", Description: "a hand edit on a spoke is undone"},
	}
}

// send reports an event, as a Source must: never after ctx ends.
func send(ctx context.Context, events chan<- ScenarioEvent, ev ScenarioEvent) {
	select {
	case events <- ev:
	case <-ctx.Done():
	}
}

func scenariosModelOn(src *fakeSource) (*model, *scenariosModel) {
	m := newTestModel(src)
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	press(m, "6")
	return m, m.screens[5].(*scenariosModel)
}

func TestScenariosList(t *testing.T) {
	m, _ := scenariosModelOn(&fakeSource{scenarios: sampleScenarios()})
	v := m.View()
	for _, want := range []string{"SCENARIO", "WHAT IT SHOWS", "> fleet-rollout    a commit reaches every spoke", "drift-self-heal", "enter run"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	m2, _ := scenariosModelOn(&fakeSource{})
	if v := m2.View(); !strings.Contains(v, "No scenarios are wired into this build yet.") {
		t.Errorf("an empty catalog should say so:\n%s", v)
	}
}

func TestScenariosRunFollowsSteps(t *testing.T) {
	src := &fakeSource{scenarios: sampleScenarios(), runs: map[string]func(context.Context, chan<- ScenarioEvent) error{
		"drift-self-heal": func(ctx context.Context, ev chan<- ScenarioEvent) error {
			send(ctx, ev, ScenarioEvent{Step: "edit the Deployment on spoke-1", Phase: StepStarted, At: t0.Add(-5 * time.Second)})
			send(ctx, ev, ScenarioEvent{Step: "edit the Deployment on spoke-1", Phase: StepPassed, At: t0.Add(-4 * time.Second)})
			send(ctx, ev, ScenarioEvent{Step: "wait for the agent to undo it", Phase: StepStarted, At: t0.Add(-4 * time.Second)})
			send(ctx, ev, ScenarioEvent{Step: "wait for the agent to undo it", Phase: StepDetail, Detail: "replicas 5, want 2"})
			send(ctx, ev, ScenarioEvent{Step: "wait for the agent to undo it", Phase: StepFailed, Err: errors.New("still 5 replicas after 30s"), At: t0})
			return errors.New("the agent did not undo the edit: still 5 replicas after 30s")
		},
	}}
	m, _ := scenariosModelOn(src)
	press(m, "j", "enter")
	if got := src.recorded(); len(got) != 1 || got[0] != "run drift-self-heal" {
		t.Fatalf("source calls = %v", got)
	}
	v := m.View()
	for _, want := range []string{
		"Scenario drift-self-heal ✗ FAILED after 0s: the agent did not undo the edit",
		"✓ edit the Deployment on spoke-1 1s",
		"✗ wait for the agent to undo it 4s still 5 replicas after 30s",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

func TestScenariosRunningStepSpins(t *testing.T) {
	src := &fakeSource{scenarios: sampleScenarios()}
	m, sm := scenariosModelOn(src)
	// Drive the run by hand: the messages a run sends, in order.
	sm.gen = 1
	sm.run = &scenarioRun{gen: 1, name: "fleet-rollout", start: t0.Add(-3 * time.Second)}
	m.Update(scenarioEventMsg{gen: 1, ev: ScenarioEvent{Step: "commit a change", Phase: StepStarted, At: t0.Add(-2 * time.Second)}})
	m.Update(scenarioEventMsg{gen: 1, ev: ScenarioEvent{Step: "commit a change", Phase: StepDetail, Detail: "1/2 spokes Synced"}})
	v := m.View()
	for _, want := range []string{"Scenario fleet-rollout", "running · 3s", "commit a change 2s · 1/2 spokes Synced"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	// A message of an earlier run is dropped.
	m.Update(scenarioEventMsg{gen: 0, ev: ScenarioEvent{Step: "stale", Phase: StepStarted}})
	if strings.Contains(m.View(), "stale") {
		t.Error("an earlier run's event was shown")
	}
	// The verdict waits until every event is shown.
	m.Update(scenarioDoneMsg{gen: 1, at: t0})
	if !sm.running() {
		t.Error("the run ended before its events were drained")
	}
	m.Update(scenarioEventMsg{gen: 1, ev: ScenarioEvent{Step: "commit a change", Phase: StepPassed, At: t0}})
	m.Update(scenarioDrainedMsg{gen: 1})
	if v := m.View(); !strings.Contains(v, "✓ PASSED in 3s") || !strings.Contains(v, "✓ commit a change 2s") {
		t.Errorf("a passed run should say so:\n%s", v)
	}
	// A second enter runs again; an unknown scenario fails with the reason.
	press(m, "enter")
	if v := m.View(); !strings.Contains(v, `✗ FAILED after 0s: no scenario "fleet-rollout"`) {
		t.Errorf("a failing run should show the reason:\n%s", v)
	}
}

func TestScenariosPendingSteps(t *testing.T) {
	m, sm := scenariosModelOn(&fakeSource{scenarios: sampleScenarios()})
	sm.gen = 1
	sm.run = &scenarioRun{gen: 1, name: "prune", start: t0}
	for _, ev := range []ScenarioEvent{
		{Step: "delete a file from Git", Phase: StepPending},
		{Step: "wait for the prune", Phase: StepPending},
		{Step: "delete a file from Git", Phase: StepStarted, At: t0},
		{Phase: StepDetail, Detail: "git push"}, // no title: the running step
	} {
		m.Update(scenarioEventMsg{gen: 1, ev: ev})
	}
	v := m.View()
	for _, want := range []string{"delete a file from Git 0s · git push", "· wait for the prune"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if n := len(sm.run.steps); n != 2 {
		t.Errorf("%d steps, want the 2 announced", n)
	}
	m.Update(scenarioEventMsg{gen: 1, ev: ScenarioEvent{Step: "delete a file from Git", Phase: StepFailed, Err: errors.New("push rejected"), At: t0}})
	m.Update(scenarioDoneMsg{gen: 1, err: errors.New("push rejected"), at: t0})
	m.Update(scenarioDrainedMsg{gen: 1})
	if v := m.View(); !strings.Contains(v, "- wait for the prune not run") || !strings.Contains(v, "✗ FAILED after 0s: push rejected") {
		t.Errorf("a failed run should show the steps it never ran:\n%s", v)
	}
}
