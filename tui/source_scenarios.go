package tui

import (
	"context"
	"errors"
	"time"

	"github.com/tether-dev/tether/scenarios/catalog"
)

// Scenarios lists the catalog, the one `tether scenario list` shows.
func (s *workbenchSource) Scenarios(context.Context) ([]ScenarioInfo, error) {
	all := catalog.All()
	out := make([]ScenarioInfo, 0, len(all))
	for _, sc := range all {
		out = append(out, ScenarioInfo{Name: sc.Name, Description: sc.Description})
	}
	return out, nil
}

// RunScenario is `tether scenario run <name>` on this workbench: the same
// runner (catalog.NewRunner), with its steps sent to the screen instead of
// printed (see Source).
func (s *workbenchSource) RunScenario(ctx context.Context, name string, events chan<- ScenarioEvent) error {
	r, picked, _, err := catalog.NewRunner(ctx, catalog.RunOptions{
		Names: []string{name}, StateDir: s.wb.StateDir(), CacheDir: s.cacheDir, Kubeconfig: s.wb.KubeconfigPath(),
		Observer: &eventObserver{ctx: ctx, events: events},
	})
	if err != nil {
		return err
	}
	results, err := r.Run(ctx, picked)
	if err != nil {
		return err
	}
	return verdictOf(results)
}

// verdictOf is a run's results as the screen's verdict, which knows only
// pass (nil) and fail: a skip must not read as a pass.
func verdictOf(results []catalog.Result) error {
	for _, res := range results {
		switch res.Status {
		case catalog.Failed:
			return errors.New(res.Reason)
		case catalog.Skipped:
			return errors.New("skipped: " + res.Reason)
		}
	}
	return nil
}

// eventObserver turns the runner's calls into the screen's events. The
// screen reads events for as long as the run goes; ctx ends the sends if
// it stops reading (the UI quit).
type eventObserver struct {
	ctx    context.Context
	events chan<- ScenarioEvent
}

func (o *eventObserver) send(ev ScenarioEvent) {
	ev.At = time.Now()
	select {
	case o.events <- ev:
	case <-o.ctx.Done():
	}
}

func (o *eventObserver) ScenarioStarted(_ string, steps []string) {
	for _, s := range steps {
		o.send(ScenarioEvent{Step: s, Phase: StepPending})
	}
}

func (o *eventObserver) StepStarted(_, step string) {
	o.send(ScenarioEvent{Step: step, Phase: StepStarted})
}

func (o *eventObserver) StepDone(_, step string, _ time.Duration, err error) {
	if err != nil {
		o.send(ScenarioEvent{Step: step, Phase: StepFailed, Err: err})
		return
	}
	o.send(ScenarioEvent{Step: step, Phase: StepPassed})
}

func (o *eventObserver) Log(_, msg string) {
	o.send(ScenarioEvent{Phase: StepDetail, Detail: msg})
}

func (o *eventObserver) ScenarioDone(catalog.Result) {}
