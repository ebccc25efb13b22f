package tui

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tether-dev/tether/scenarios/catalog"
)

func TestWorkbenchScenariosListTheCatalog(t *testing.T) {
	got, err := (&workbenchSource{}).Scenarios(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(catalog.All()) || len(got) == 0 {
		t.Fatalf("listed %d scenarios, the catalog has %d", len(got), len(catalog.All()))
	}
	for _, s := range got {
		if s.Name == "" || s.Description == "" {
			t.Fatalf("scenario without name or description: %+v", s)
		}
	}
}

func TestEventObserverSendsEveryStepInOrder(t *testing.T) {
	events := make(chan ScenarioEvent, 16)
	o := &eventObserver{ctx: context.Background(), events: events}
	boom := errors.New("boom")
	o.ScenarioStarted("x", []string{"a", "b"})
	o.StepStarted("x", "a")
	o.Log("x", "waiting")
	o.StepDone("x", "a", 0, nil)
	o.StepStarted("x", "b")
	o.StepDone("x", "b", 0, boom)
	close(events)
	type want struct {
		step  string
		phase ScenarioPhase
	}
	wants := []want{{"a", StepPending}, {"b", StepPending}, {"a", StepStarted}, {"", StepDetail},
		{"a", StepPassed}, {"b", StepStarted}, {"b", StepFailed}}
	i := 0
	for ev := range events {
		if i >= len(wants) {
			t.Fatalf("extra event %+v", ev)
		}
		if ev.Step != wants[i].step || ev.Phase != wants[i].phase {
			t.Fatalf("event %d = %q/%v, want %q/%v", i, ev.Step, ev.Phase, wants[i].step, wants[i].phase)
		}
		if ev.Phase == StepFailed && !errors.Is(ev.Err, boom) {
			t.Fatalf("failed step lost its error: %v", ev.Err)
		}
		i++
	}
	if i != len(wants) {
		t.Fatalf("got %d events, want %d", i, len(wants))
	}
}

func TestEventObserverStopsSendingWhenTheUIIsGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := &eventObserver{ctx: ctx, events: make(chan ScenarioEvent)} // nobody reads
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.StepStarted("x", "a") // must not block
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("StepStarted blocked after the UI's context was cancelled")
	}
}

// The screen knows pass and fail only: a skipped scenario must not read
// as passed.
func TestVerdictOf(t *testing.T) {
	if err := verdictOf([]catalog.Result{{Name: "a", Status: catalog.Passed}}); err != nil {
		t.Errorf("passed: %v", err)
	}
	if err := verdictOf([]catalog.Result{{Name: "a", Status: catalog.Failed, Reason: "expected x"}}); err == nil || err.Error() != "expected x" {
		t.Errorf("failed: %v", err)
	}
	if err := verdictOf([]catalog.Result{{Name: "a", Status: catalog.Skipped, Reason: "needs embedded"}}); err == nil || err.Error() != "skipped: needs embedded" {
		t.Errorf("skipped: %v", err)
	}
}
