package tui

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// The golden tests run the real program (teatest) at a fixed size with the
// ASCII profile (TestMain), drive it with keys, and compare the final
// screen. They compare the final model's View rather than the raw output
// stream, because the renderer's frame timing makes the stream differ from
// run to run while the screen does not.

const termW, termH = 100, 30

func startProgram(t *testing.T, src Source, opts ...func(*Options)) *teatest.TestModel {
	t.Helper()
	o := Options{Source: src, Now: fixedNow}
	for _, f := range opts {
		f(&o)
	}
	tm := teatest.NewTestModel(t, New(o), teatest.WithInitialTermSize(termW, termH))
	t.Cleanup(func() { _ = tm.Quit() })
	return tm
}

func waitFor(t *testing.T, tm *teatest.TestModel, text string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(text)) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

func finalView(t *testing.T, tm *teatest.TestModel) []byte {
	t.Helper()
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	return []byte(tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).View())
}

func TestGoldenClusters(t *testing.T) {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()})
	waitFor(t, tm, "kube-scheduler")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenClustersUp(t *testing.T) {
	rep := NewReporter(fixedNow)
	src := &fakeSource{snap: Snapshot{StateDir: "/state/tether"}, up: func(context.Context) error {
		s := rep.Start("build control-plane binaries")
		s.Update("kube-apiserver")
		s.Done(nil)
		for _, c := range []string{"create hub hub", "create spoke spoke-1"} {
			s := rep.Start(c)
			if c == "create spoke spoke-1" {
				s.Done(errors.New("API server port 6443 is taken"))
				continue
			}
			s.Done(nil)
		}
		// Return only once the UI has taken every step, so the result is
		// not drawn before the steps it sums up.
		for len(rep.ch) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		return errors.New("spoke-1: API server port 6443 is taken")
	}}
	tm := startProgram(t, src, func(o *Options) { o.Reporter = rep })
	waitFor(t, tm, "No workbench")
	tm.Type("u")
	waitFor(t, tm, "failed after")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenApplications(t *testing.T) {
	src := &fakeSource{
		snap:    sampleSnapshot(),
		apps:    sampleApps(),
		appErrs: map[string]error{"hub": errors.New("no Application API here yet (the CRD is not installed)")},
	}
	tm := startProgram(t, src)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenApplicationsChange(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(), shas: []string{"0123456789abcdef"}}
	tm := startProgram(t, src)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	tm.Type("c")
	waitFor(t, tm, "committed 01234567")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenAgents(t *testing.T) {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot(), agents: sampleAgents()})
	waitFor(t, tm, "kube-scheduler")
	tm.Type("2")
	waitFor(t, tm, "connected")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenApplicationDetail(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps()}
	tm := startProgram(t, src)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	tm.Type("j")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "replicas available")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenLogsFullHelp(t *testing.T) {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()})
	waitFor(t, tm, "kube-scheduler")
	tm.Type("4")
	waitFor(t, tm, "Pick a log")
	tm.Type("?")
	waitFor(t, tm, "previous screen")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenIntercepts(t *testing.T) {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot(), intercepts: sampleIntercepts()})
	waitFor(t, tm, "kube-scheduler")
	tm.Type("5")
	waitFor(t, tm, "guestbook-80")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenInterceptForm(t *testing.T) {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()})
	waitFor(t, tm, "kube-scheduler")
	tm.Type("5")
	waitFor(t, tm, "No intercepts")
	tm.Type("n")
	waitFor(t, tm, "Start an intercept")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("guestbook-ui")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("http")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "give the Service port")
	// q types into the form rather than quitting; ctrl+c still quits.
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	teatest.RequireEqualOutput(t, []byte(tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).View()))
}

func TestGoldenScenarios(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), scenarios: sampleScenarios(), runs: map[string]func(context.Context, chan<- ScenarioEvent) error{
		"fleet-rollout": func(ctx context.Context, ev chan<- ScenarioEvent) error {
			for _, s := range []string{"commit replicas: 3 to the sample", "wait until every spoke runs the commit", "check the Deployments"} {
				send(ctx, ev, ScenarioEvent{Step: s, Phase: StepPending})
			}
			send(ctx, ev, ScenarioEvent{Step: "commit replicas: 3 to the sample", Phase: StepStarted, At: t0.Add(-9 * time.Second)})
			send(ctx, ev, ScenarioEvent{Step: "commit replicas: 3 to the sample", Phase: StepPassed, At: t0.Add(-8 * time.Second)})
			send(ctx, ev, ScenarioEvent{Step: "wait until every spoke runs the commit", Phase: StepStarted, At: t0.Add(-8 * time.Second)})
			send(ctx, ev, ScenarioEvent{Step: "wait until every spoke runs the commit", Phase: StepFailed, At: t0,
				Err: errors.New("spoke-2 still at 4f1c2a9b after 8s")})
			return errors.New("spoke-2 did not sync: its agent is disconnected")
		},
	}}
	tm := startProgram(t, src)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("6")
	waitFor(t, tm, "drift-self-heal")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "FAILED")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}

func TestGoldenApplicationDiff(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(),
		diffs: map[string]Diff{"spoke-1/tether-system/podinfo": sampleDiff()}}
	tm := startProgram(t, src)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	tm.Type("j")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "replicas available")
	tm.Type("d")
	waitFor(t, tm, "would change 3")
	teatest.RequireEqualOutput(t, finalView(t, tm))
}
