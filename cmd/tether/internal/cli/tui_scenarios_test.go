package cli

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tether-dev/tether/scenarios/catalog"
	"github.com/tether-dev/tether/tui"
)

func TestTUIScenariosListTheCatalog(t *testing.T) {
	got, err := tuiScenarios(context.Background())
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
	events := make(chan tui.ScenarioEvent, 16)
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
		phase tui.ScenarioPhase
	}
	wants := []want{{"a", tui.StepPending}, {"b", tui.StepPending}, {"a", tui.StepStarted}, {"", tui.StepDetail},
		{"a", tui.StepPassed}, {"b", tui.StepStarted}, {"b", tui.StepFailed}}
	i := 0
	for ev := range events {
		if i >= len(wants) {
			t.Fatalf("extra event %+v", ev)
		}
		if ev.Step != wants[i].step || ev.Phase != wants[i].phase {
			t.Fatalf("event %d = %q/%v, want %q/%v", i, ev.Step, ev.Phase, wants[i].step, wants[i].phase)
		}
		if ev.Phase == tui.StepFailed && !errors.Is(ev.Err, boom) {
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
	o := &eventObserver{ctx: ctx, events: make(chan tui.ScenarioEvent)} // nobody reads
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
