package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

func TestMain(m *testing.M) {
	// Golden files hold plain text: no colour, whatever terminal runs the
	// tests.
	lipgloss.SetColorProfile(termenv.Ascii)
	lipgloss.SetHasDarkBackground(true)
	os.Exit(m.Run())
}

// t0 is the fixed clock of every test, so elapsed times are stable.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// fakeSource is a workbench in memory.
type fakeSource struct {
	mu        sync.Mutex
	snap      Snapshot
	statusErr error
	apps      map[string][]v1alpha1.Application
	appErrs   map[string]error
	agents    []v1alpha1.Agent
	agentsErr error
	// shas are what MakeChange returns, one per call.
	shas    []string
	actions []string
	// up and down run for Up and Down; nil succeeds at once.
	up, down func(ctx context.Context) error
	// addSpoke and removeSpoke run for AddSpoke and RemoveSpoke.
	addSpoke, removeSpoke func(ctx context.Context, name string) error
	// diffs are what Diff returns, by cluster/namespace/app; a missing
	// one is an error.
	diffs map[string]Diff
	// intercepts are listed by Intercepts; start and stop change them.
	intercepts   []InterceptInfo
	interceptErr error
	startErr     error
	// reach is where a started intercept is reached from this machine.
	reach string
	// scenarios are listed; runs says what each one does when run.
	scenarios []ScenarioInfo
	runs      map[string]func(ctx context.Context, events chan<- ScenarioEvent) error
	// live is what Live returns: tests push watch results on it. Nil is a
	// source without watches, which the screens list instead.
	live chan Live
	// calls counts Status, Apps (per cluster) and Agents calls, so tests
	// can tell a watch update from a listing.
	calls map[string]int
}

func (f *fakeSource) Live() <-chan Live { return f.live }

func (f *fakeSource) count(call string) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[call]++
}

func (f *fakeSource) called(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

func (f *fakeSource) AddSpoke(ctx context.Context, name string) error {
	f.record("add spoke " + name)
	if f.addSpoke != nil {
		return f.addSpoke(ctx, name)
	}
	return nil
}

func (f *fakeSource) RemoveSpoke(ctx context.Context, name string) error {
	f.record("remove spoke " + name)
	if f.removeSpoke != nil {
		return f.removeSpoke(ctx, name)
	}
	return nil
}

func (f *fakeSource) Diff(_ context.Context, cluster, ns, app string) (Diff, error) {
	f.record("diff " + cluster + "/" + ns + "/" + app)
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.diffs[cluster+"/"+ns+"/"+app]
	if !ok {
		return Diff{}, errors.New("git fetch http://git.tether-system/sample.git: connection refused")
	}
	return d, nil
}

func (f *fakeSource) Intercepts(context.Context) ([]InterceptInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]InterceptInfo(nil), f.intercepts...), f.interceptErr
}

func (f *fakeSource) StartIntercept(_ context.Context, spec InterceptSpec) (string, string, error) {
	f.record(fmt.Sprintf("start %s:%d -> %s %v", spec.Target(), spec.Port, spec.To, spec.Headers))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return "", "", f.startErr
	}
	name := fmt.Sprintf("%s-%d", spec.Service, spec.Port)
	f.intercepts = append(f.intercepts, InterceptInfo{Name: name, Cluster: spec.Cluster, Namespace: spec.Namespace,
		Service: spec.Service, Port: spec.Port, To: spec.To, Reach: f.reach, Alive: true, Held: true, Traffic: "-"})
	return name, f.reach, nil
}

func (f *fakeSource) StopIntercept(_ context.Context, cluster, name string) error {
	f.record("stop " + cluster + "/" + name)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, it := range f.intercepts {
		if it.Cluster == cluster && it.Name == name {
			f.intercepts = append(f.intercepts[:i], f.intercepts[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("intercept %q: no such intercept", name)
}

func (f *fakeSource) Scenarios(context.Context) ([]ScenarioInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ScenarioInfo(nil), f.scenarios...), nil
}

func (f *fakeSource) RunScenario(ctx context.Context, name string, events chan<- ScenarioEvent) error {
	f.record("run " + name)
	f.mu.Lock()
	run := f.runs[name]
	f.mu.Unlock()
	if run == nil {
		return fmt.Errorf("no scenario %q", name)
	}
	return run(ctx, events)
}

func (f *fakeSource) Status(context.Context) (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("status")
	return f.snap, f.statusErr
}

func (f *fakeSource) Up(ctx context.Context) error {
	f.record("up")
	if f.up != nil {
		return f.up(ctx)
	}
	return nil
}

func (f *fakeSource) Down(ctx context.Context) error {
	f.record("down")
	if f.down != nil {
		return f.down(ctx)
	}
	return nil
}

func (f *fakeSource) Apps(_ context.Context, cluster string) ([]v1alpha1.Application, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("apps " + cluster)
	if err := f.appErrs[cluster]; err != nil {
		return nil, err
	}
	return append([]v1alpha1.Application(nil), f.apps[cluster]...), nil
}

func (f *fakeSource) Agents(context.Context) ([]v1alpha1.Agent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("agents")
	return append([]v1alpha1.Agent(nil), f.agents...), f.agentsErr
}

func (f *fakeSource) MakeChange(_ context.Context, replicas int) (string, error) {
	f.record(fmt.Sprintf("change %d", replicas))
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.shas) == 0 {
		return "", errors.New("the GitOps system is not up: run `tether up`")
	}
	sha := f.shas[0]
	f.shas = f.shas[1:]
	return sha, nil
}

func (f *fakeSource) Sync(_ context.Context, cluster, _, app string) error {
	f.record("sync " + cluster + "/" + app)
	return nil
}

func (f *fakeSource) Refresh(_ context.Context, cluster, _, app string) error {
	if app == "broken" {
		return errors.New("the server is on fire")
	}
	f.record("refresh " + cluster + "/" + app)
	return nil
}

func (f *fakeSource) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, s)
}

func (f *fakeSource) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

// sampleSnapshot is a hub that is ready and a spoke with a dead process.
func sampleSnapshot() Snapshot {
	return Snapshot{
		StateDir: "/state/tether",
		Provider: "embedded",
		Clusters: []ClusterInfo{
			{
				Name: "hub", Role: "hub", Provider: "embedded", Endpoint: "https://127.0.0.1:40001", Context: "tether-hub",
				Ready: true, Nodes: "1/1",
				Processes: []Process{
					{Name: "etcd", PID: 11, Alive: true, Log: "/state/tether/clusters/hub/logs/etcd.log"},
					{Name: "kube-apiserver", PID: 12, Alive: true, Log: "/state/tether/clusters/hub/logs/kube-apiserver.log"},
				},
			},
			{
				Name: "spoke-1", Role: "spoke", Provider: "embedded", Endpoint: "https://127.0.0.1:40002", Context: "tether-spoke-1",
				Reason: "kube-scheduler is not running; run `tether up` to restart it", Nodes: "1/1",
				Processes: []Process{
					{Name: "etcd", PID: 21, Alive: true, Log: "/state/tether/clusters/spoke-1/logs/etcd.log"},
					{Name: "kube-scheduler", PID: 22, Alive: false, Log: "/state/tether/clusters/spoke-1/logs/kube-scheduler.log"},
				},
			},
		},
		Components: []Process{
			{Name: "git", PID: 31, Alive: true, Log: "/state/tether/fleet/logs/git.log"},
			{Name: "principal", PID: 32, Alive: true, Log: "/state/tether/fleet/logs/principal.log"},
			{Name: "agent-spoke-1", PID: 33, Alive: true, Log: "/state/tether/fleet/logs/agent-spoke-1.log"},
		},
	}
}

func sampleApp(name, syncStatus, health, rev string) v1alpha1.Application {
	a := v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tether-system"},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: "http://git.tether-system/sample.git", TargetRevision: "main", Path: "guestbook"},
			Destination: v1alpha1.Destination{Namespace: "guestbook"},
		},
	}
	a.Status.Sync = v1alpha1.SyncStatus{Status: syncStatus, Revision: rev}
	a.Status.Health = v1alpha1.HealthStatus{Status: health}
	a.Status.History = []v1alpha1.RevisionHistory{{ID: 1, Revision: rev, DeployedAt: metav1.NewTime(t0.Add(-90 * time.Second))}}
	a.Status.Resources = []v1alpha1.ResourceStatus{
		{Version: "v1", Kind: "Service", Namespace: "guestbook", Name: "guestbook-ui", Status: "Synced", Health: &v1alpha1.HealthStatus{Status: "Healthy"}},
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "guestbook", Name: "guestbook-ui", Status: syncStatus,
			Health: &v1alpha1.HealthStatus{Status: health, Message: "1 of 2 replicas available"}},
	}
	return a
}

func sampleApps() map[string][]v1alpha1.Application {
	return map[string][]v1alpha1.Application{
		"spoke-1": {
			sampleApp("guestbook", "Synced", "Healthy", "4f1c2a9be0d3c7aa"),
			sampleApp("podinfo", "OutOfSync", "Progressing", "9d8e7f6a5b4c3d2e"),
		},
	}
}

// newTestModel is the root model over src at 100x30 with the fixed clock.
func newTestModel(src Source, opts ...func(*Options)) *model {
	o := Options{Source: src, Now: fixedNow}
	for _, f := range opts {
		f(&o)
	}
	m := newModel(context.Background(), o, discardLogger())
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	return m
}

// exec runs cmd and what it batches, returning the messages that arrive
// within a moment. Timers (spinner frames, the next status probe, log
// polls) do not arrive in time and are left out, so tests stay in control
// of every step.
func exec(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	select {
	case msg := <-ch:
		if batch, ok := msg.(tea.BatchMsg); ok {
			var out []tea.Msg
			for _, c := range batch {
				out = append(out, exec(c)...)
			}
			return out
		}
		if msg == nil {
			return nil
		}
		return []tea.Msg{msg}
	case <-time.After(150 * time.Millisecond):
		return nil
	}
}

// settle feeds m the results of cmd, and of the commands those results
// start, until nothing more arrives at once.
func settle(m tea.Model, cmd tea.Cmd) {
	queue := exec(cmd)
	for i := 0; len(queue) > 0 && i < 100; i++ {
		msg := queue[0]
		queue = queue[1:]
		switch msg.(type) {
		case spinner.TickMsg, statusTickMsg, logTickMsg:
			continue // timers would loop forever; tests send them by hand
		}
		_, next := m.Update(msg)
		queue = append(queue, exec(next)...)
	}
}

func keyMsg(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "ctrl+u":
		return tea.KeyMsg{Type: tea.KeyCtrlU}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// press sends a key and settles what it starts.
func press(m *model, keys ...string) {
	for _, k := range keys {
		_, cmd := m.Update(keyMsg(k))
		settle(m, cmd)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
