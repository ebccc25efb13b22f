package tui

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
)

// The golden tests run the real program (teatest) at a fixed size with the
// ASCII profile (TestMain), drive it with keys, and compare the final
// screen. They compare the final model's View rather than the raw output
// stream, because the renderer's frame timing makes the stream differ from
// run to run while the screen does not. Run them with -update to rewrite
// the files in testdata after a deliberate change of the screens.
//
// Each screen is drawn at two sizes: termW×termH, room to spare, and
// 80×24, the default terminal, where TestGoldenDefaultTerminal also checks
// that nothing wraps or runs off the edge.

const termW, termH = 100, 30

// defaultW and defaultH are the size terminals open at unless told
// otherwise (xterm, macOS Terminal, tmux's detached sessions).
const defaultW, defaultH = 80, 24

func startProgram(t *testing.T, src Source, w, h int, opts ...func(*Options)) *teatest.TestModel {
	t.Helper()
	o := Options{Source: src, Now: fixedNow}
	for _, f := range opts {
		f(&o)
	}
	tm := teatest.NewTestModel(t, New(o), teatest.WithInitialTermSize(w, h))
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

// goldenScreen drives the program at w×h to one state of a screen and
// returns the screen.
type goldenScreen func(t *testing.T, w, h int) []byte

// goldenScreens are every state the golden files hold, by name.
func goldenScreens() []struct {
	name string
	run  goldenScreen
} {
	return []struct {
		name string
		run  goldenScreen
	}{
		{"Clusters", clustersScreen},
		{"ClustersUp", clustersUpScreen},
		{"ClustersAddSpoke", clustersAddSpokeScreen},
		{"Agents", agentsScreen},
		{"Applications", applicationsScreen},
		{"ApplicationsChange", applicationsChangeScreen},
		{"ApplicationDetail", applicationDetailScreen},
		{"ApplicationDiff", applicationDiffScreen},
		{"Logs", logsScreen},
		{"LogsFullHelp", logsFullHelpScreen},
		{"LogsOpen", logsOpenScreen},
		{"Intercepts", interceptsScreen},
		{"InterceptForm", interceptFormScreen},
		{"InterceptStarted", interceptStartedScreen},
		{"Scenarios", scenariosScreen},
	}
}

func TestGoldenClusters(t *testing.T) {
	teatest.RequireEqualOutput(t, clustersScreen(t, termW, termH))
}

func TestGoldenClustersUp(t *testing.T) {
	teatest.RequireEqualOutput(t, clustersUpScreen(t, termW, termH))
}

func TestGoldenApplications(t *testing.T) {
	teatest.RequireEqualOutput(t, applicationsScreen(t, termW, termH))
}

func TestGoldenApplicationsChange(t *testing.T) {
	teatest.RequireEqualOutput(t, applicationsChangeScreen(t, termW, termH))
}

func TestGoldenAgents(t *testing.T) {
	teatest.RequireEqualOutput(t, agentsScreen(t, termW, termH))
}

func TestGoldenApplicationDetail(t *testing.T) {
	teatest.RequireEqualOutput(t, applicationDetailScreen(t, termW, termH))
}

func TestGoldenLogsFullHelp(t *testing.T) {
	teatest.RequireEqualOutput(t, logsFullHelpScreen(t, termW, termH))
}

func TestGoldenIntercepts(t *testing.T) {
	teatest.RequireEqualOutput(t, interceptsScreen(t, termW, termH))
}

func TestGoldenInterceptForm(t *testing.T) {
	teatest.RequireEqualOutput(t, interceptFormScreen(t, termW, termH))
}

func TestGoldenInterceptStarted(t *testing.T) {
	teatest.RequireEqualOutput(t, interceptStartedScreen(t, termW, termH))
}

func TestGoldenScenarios(t *testing.T) {
	teatest.RequireEqualOutput(t, scenariosScreen(t, termW, termH))
}

func TestGoldenApplicationDiff(t *testing.T) {
	teatest.RequireEqualOutput(t, applicationDiffScreen(t, termW, termH))
}

// TestGoldenDefaultTerminal draws every screen, and every screen's full
// help, at 80×24: the size a newcomer's terminal opens at.
func TestGoldenDefaultTerminal(t *testing.T) {
	for _, s := range goldenScreens() {
		t.Run(s.name, func(t *testing.T) {
			v := s.run(t, defaultW, defaultH)
			requireFits(t, string(v), defaultW, defaultH)
			teatest.RequireEqualOutput(t, v)
		})
	}
	for i, name := range []string{"Clusters", "Agents", "Applications", "Logs", "Intercepts", "Scenarios"} {
		t.Run("FullHelp"+name, func(t *testing.T) {
			src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(), agents: sampleAgents(),
				intercepts: sampleIntercepts(), scenarios: sampleScenarios()}
			tm := startProgram(t, src, defaultW, defaultH)
			waitFor(t, tm, "kube-scheduler")
			tm.Type(string(rune('1' + i)))
			tm.Type("?")
			waitFor(t, tm, "previous screen")
			tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
			m := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*model)
			v := m.View()
			requireFits(t, v, defaultW, defaultH)
			// Every key is there: no column is dropped at the edge.
			for _, group := range m.helpKeys().full {
				for _, b := range group {
					if !strings.Contains(v, b.Help().Key) || !strings.Contains(v, b.Help().Desc) {
						t.Errorf("the full help lacks %s %s:\n%s", b.Help().Key, b.Help().Desc, v)
					}
				}
			}
			teatest.RequireEqualOutput(t, []byte(v))
		})
	}
}

// requireFits fails unless view fits w×h, with the tabs on one line and
// the help still offering ? and q, the keys that lead to the rest.
func requireFits(t *testing.T, view string, w, h int) {
	t.Helper()
	if n := lipgloss.Height(view); n > h {
		t.Errorf("%d lines, more than the terminal's %d", n, h)
	}
	lines := strings.Split(view, "\n")
	for i, l := range lines {
		if n := lipgloss.Width(l); n > w {
			t.Errorf("line %d is %d cells, wider than the terminal's %d: %q", i+1, n, w, l)
		}
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "───") {
		t.Errorf("the tabs take more than one line:\n%s", view)
	}
	// A form takes every key but its own (esc cancels it).
	if !strings.Contains(view, "? more keys") && !strings.Contains(view, "esc cancel") {
		t.Errorf("the help lost ? more keys:\n%s", view)
	}
	if !strings.Contains(view, "q quit") && !strings.Contains(view, "esc cancel") {
		t.Errorf("the help lost q quit:\n%s", view)
	}
}

func clustersScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()}, w, h)
	waitFor(t, tm, "kube-scheduler")
	return finalView(t, tm)
}

func clustersUpScreen(t *testing.T, w, h int) []byte {
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
	tm := startProgram(t, src, w, h, func(o *Options) { o.Reporter = rep })
	waitFor(t, tm, "No workbench")
	tm.Type("u")
	waitFor(t, tm, "failed after")
	return finalView(t, tm)
}

func clustersAddSpokeScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()}, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("a")
	waitFor(t, tm, "Add a spoke")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlU}) // the suggested name
	tm.Type("Spoke_2")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "✗")
	// Typing goes to the prompt; ctrl+c still quits.
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	return []byte(tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).View())
}

func applicationsScreen(t *testing.T, w, h int) []byte {
	src := &fakeSource{
		snap:    sampleSnapshot(),
		apps:    sampleApps(),
		appErrs: map[string]error{"hub": errors.New("no Application API here yet (the CRD is not installed)")},
	}
	tm := startProgram(t, src, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	return finalView(t, tm)
}

func applicationsChangeScreen(t *testing.T, w, h int) []byte {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(), shas: []string{"0123456789abcdef"}}
	tm := startProgram(t, src, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	tm.Type("c")
	waitFor(t, tm, "committed 01234567")
	return finalView(t, tm)
}

func agentsScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot(), agents: sampleAgents()}, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("2")
	waitFor(t, tm, "connected")
	return finalView(t, tm)
}

func applicationDetailScreen(t *testing.T, w, h int) []byte {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps()}
	tm := startProgram(t, src, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	tm.Type("j")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "replicas available")
	return finalView(t, tm)
}

func applicationDiffScreen(t *testing.T, w, h int) []byte {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(),
		diffs: map[string]Diff{"spoke-1/tether-system/podinfo": sampleDiff()}}
	tm := startProgram(t, src, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("3")
	waitFor(t, tm, "podinfo")
	tm.Type("j")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "replicas available")
	tm.Type("d")
	waitFor(t, tm, "would change 3")
	return finalView(t, tm)
}

func logsScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()}, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("4")
	waitFor(t, tm, "Pick a log")
	return finalView(t, tm)
}

func logsFullHelpScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()}, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("4")
	waitFor(t, tm, "Pick a log")
	tm.Type("?")
	waitFor(t, tm, "previous screen")
	return finalView(t, tm)
}

// logsOpenScreen follows a log that is not there yet (the sample's paths
// do not exist), which keeps the file's temporary path out of the golden
// file.
func logsOpenScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()}, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("4")
	waitFor(t, tm, "Pick a log")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "no such file")
	return finalView(t, tm)
}

func interceptsScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot(), intercepts: sampleIntercepts()}, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("5")
	waitFor(t, tm, "guestbook-ui")
	return finalView(t, tm)
}

func interceptFormScreen(t *testing.T, w, h int) []byte {
	tm := startProgram(t, &fakeSource{snap: sampleSnapshot()}, w, h)
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
	return []byte(tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).View())
}

// interceptStartedScreen starts the newcomer's intercept of the sample
// from the form, beside one held elsewhere: the report and the rows say
// where this machine reaches each Service.
func interceptStartedScreen(t *testing.T, w, h int) []byte {
	other := InterceptInfo{Name: "api-8080", Cluster: "spoke-1", Namespace: "shop", Service: "api", Port: 8080,
		Headers: map[string]string{"X-Dev": "ann"}, Reach: "127.0.0.1:40211", Alive: true, Traffic: "2 conns / 1 reqs"}
	src := &fakeSource{snap: sampleSnapshot(), intercepts: []InterceptInfo{other}, reach: "http://127.0.0.1:33761/"}
	tm := startProgram(t, src, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("5")
	waitFor(t, tm, "spoke-1/shop/api")
	tm.Type("n")
	waitFor(t, tm, "Start an intercept")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlU})
	tm.Type("sample")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("web")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("80")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("127.0.0.1:9000")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "this UI quits")
	return finalView(t, tm)
}

func scenariosScreen(t *testing.T, w, h int) []byte {
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
	tm := startProgram(t, src, w, h)
	waitFor(t, tm, "kube-scheduler")
	tm.Type("6")
	waitFor(t, tm, "drift-self-heal")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "FAILED")
	return finalView(t, tm)
}
