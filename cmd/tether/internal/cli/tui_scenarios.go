package cli

import (
	"context"
	"errors"
	"time"

	"github.com/tether-dev/tether/scenarios/catalog"
	"github.com/tether-dev/tether/tui"
)

// tuiScenarios lists the catalog for the Scenarios screen.
func tuiScenarios(context.Context) ([]tui.ScenarioInfo, error) {
	all := catalog.All()
	out := make([]tui.ScenarioInfo, 0, len(all))
	for _, s := range all {
		out = append(out, tui.ScenarioInfo{Name: s.Name, Description: s.Description})
	}
	return out, nil
}

// tuiRunScenario is `tether scenario run <name>` for the UI: the same
// runner, with its steps sent to the screen instead of printed.
func tuiRunScenario(g *globals) func(ctx context.Context, name string, events chan<- tui.ScenarioEvent) error {
	return func(ctx context.Context, name string, events chan<- tui.ScenarioEvent) error {
		r, picked, _, err := scenarioRunner(ctx, g, []string{name}, scenarioRunFlags{})
		if err != nil {
			return err
		}
		r.Observer = &eventObserver{ctx: ctx, events: events}
		results, err := r.Run(ctx, picked)
		if err != nil {
			return err
		}
		for _, res := range results {
			switch res.Status {
			case catalog.Failed:
				return errors.New(res.Reason)
			case catalog.Skipped:
				// The screen knows only pass and fail: a skip must not
				// read as a pass.
				return errors.New("skipped: " + res.Reason)
			}
		}
		return nil
	}
}

// eventObserver turns the runner's calls into the screen's events. The
// screen reads events for as long as the run goes; ctx ends the sends if
// it stops reading (the UI quit).
type eventObserver struct {
	ctx    context.Context
	events chan<- tui.ScenarioEvent
}

func (o *eventObserver) send(ev tui.ScenarioEvent) {
	ev.At = time.Now()
	select {
	case o.events <- ev:
	case <-o.ctx.Done():
	}
}

func (o *eventObserver) ScenarioStarted(_ string, steps []string) {
	for _, s := range steps {
		o.send(tui.ScenarioEvent{Step: s, Phase: tui.StepPending})
	}
}

func (o *eventObserver) StepStarted(_, step string) {
	o.send(tui.ScenarioEvent{Step: step, Phase: tui.StepStarted})
}

func (o *eventObserver) StepDone(_, step string, _ time.Duration, err error) {
	if err != nil {
		o.send(tui.ScenarioEvent{Step: step, Phase: tui.StepFailed, Err: err})
		return
	}
	o.send(tui.ScenarioEvent{Step: step, Phase: tui.StepPassed})
}

func (o *eventObserver) Log(_, msg string) {
	o.send(tui.ScenarioEvent{Phase: tui.StepDetail, Detail: msg})
}

func (o *eventObserver) ScenarioDone(catalog.Result) {}
