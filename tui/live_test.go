package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// hubApp is the hub's copy of the sample for one spoke: the hub keeps one
// namespace per spoke.
func hubApp(spoke, rev string) v1alpha1.Application {
	a := sampleApp("sample", "Synced", "Healthy", rev)
	a.Namespace = spoke
	return a
}

// deliver pushes l on the fake's channel and feeds the model what its
// waiting command receives, as the program would. It returns the commands
// Update started, without running them: one is the next wait.
func deliver(t *testing.T, m *model, src *fakeSource, l Live) tea.Cmd {
	t.Helper()
	wait := m.waitLive()
	if wait == nil {
		t.Fatal("the model does not wait for the source's Live")
	}
	src.live <- l
	got := make(chan tea.Msg, 1)
	go func() { got <- wait() }()
	select {
	case msg := <-got:
		if _, ok := msg.(liveMsg); !ok {
			t.Fatalf("the wait answered %T, want liveMsg", msg)
		}
		_, cmd := m.Update(msg)
		return cmd
	case <-time.After(2 * time.Second):
		t.Fatal("no liveMsg from the wait")
		return nil
	}
}

func TestLiveUpdatesApplicationsWithoutProbe(t *testing.T) {
	src := &fakeSource{
		snap:    sampleSnapshot(),
		apps:    sampleApps(),
		appErrs: map[string]error{"hub": errors.New("no Application API here yet (the CRD is not installed)")},
		live:    make(chan Live, 1),
	}
	m := newTestModel(src)
	press(m, "3")
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	status, hubLists := src.called("status"), src.called("apps hub")

	deliver(t, m, src, Live{Hub: "hub", AppsSynced: true, Apps: []v1alpha1.Application{hubApp("spoke-1", "4f1c2a9be0d3c7aa")}})
	v := m.View()
	for _, want := range []string{
		"  hub      spoke-1  sample     Synced     Healthy      4f1c2a9b  1m30s ago",
		// The selection stays on the Application it was on.
		"> spoke-1  spoke-1  guestbook  Synced     Healthy      4f1c2a9b  1m30s ago",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q after a watch message:\n%s", want, v)
		}
	}
	if strings.Contains(v, "CRD is not installed") {
		t.Errorf("the hub's listing error should give way to the watch:\n%s", v)
	}

	// A new revision reaches the hub: the screen follows, with no probe
	// and no listing in between.
	deliver(t, m, src, Live{Hub: "hub", AppsSynced: true, Apps: []v1alpha1.Application{
		hubApp("spoke-1", "0123456789abcdef"), hubApp("spoke-2", "0123456789abcdef"),
	}})
	v = m.View()
	for _, want := range []string{"hub      spoke-1  sample     Synced     Healthy      01234567", "hub      spoke-2  sample"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q after the second watch message:\n%s", want, v)
		}
	}
	if got := src.called("status"); got != status {
		t.Errorf("watch messages probed the workbench: %d probes, want %d", got, status)
	}
	if got := src.called("apps hub"); got != hubLists {
		t.Errorf("watch messages listed the hub: %d listings, want %d", got, hubLists)
	}

	// The next probe lists the spokes only: the hub is watched.
	spokeLists := src.called("apps spoke-1")
	_, cmd = m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	if got := src.called("apps hub"); got != hubLists {
		t.Errorf("a probe listed the watched hub")
	}
	if got := src.called("apps spoke-1"); got != spokeLists+1 {
		t.Errorf("a probe should still list spoke-1: %d listings, want %d", got, spokeLists+1)
	}
	if v := m.View(); !strings.Contains(v, "hub      spoke-2  sample") {
		t.Errorf("a listing must not hide the watched hub:\n%s", v)
	}
}

func TestLiveUpdatesAgentsWithoutProbe(t *testing.T) {
	err := errors.New("no Agent API on the hub hub yet (the CRD is not installed): bring the workbench up with u on the Clusters screen")
	src := &fakeSource{snap: sampleSnapshot(), agentsErr: err, live: make(chan Live, 1)}
	m := agentsModelWith(t, src)
	if v := m.View(); !strings.Contains(v, "no Agent API") {
		t.Fatalf("setup: the listing should fail:\n%s", v)
	}
	status, lists := src.called("status"), src.called("agents")

	deliver(t, m, src, Live{Hub: "hub", AgentsSynced: true, Agents: sampleAgents()})
	if v := m.View(); !strings.Contains(v, "spoke-1  ✓ connected  5s ago     v0.1.0   1") {
		t.Errorf("the watch's Agent should show:\n%s", v)
	}

	agents := sampleAgents()
	agents[0].Status.Connected = false
	deliver(t, m, src, Live{Hub: "hub", AgentsSynced: true, Agents: agents})
	if v := m.View(); !strings.Contains(v, "spoke-1  ✗ disconnected") {
		t.Errorf("a disconnect should show at once:\n%s", v)
	}
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	if got := src.called("status"); got != status {
		t.Errorf("watch messages probed the workbench: %d probes, want %d", got, status)
	}
	if got := src.called("agents"); got != lists {
		t.Errorf("watched Agents were listed: %d listings, want %d", got, lists)
	}
}

func TestLiveStoppedListsAgain(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), agents: sampleAgents(), live: make(chan Live, 1)}
	m := agentsModelWith(t, src)
	deliver(t, m, src, Live{Hub: "hub", AgentsSynced: true, Agents: nil})
	if v := m.View(); !strings.Contains(v, "spoke-1  ✗ never connected") {
		t.Fatalf("the watch says there is no Agent:\n%s", v)
	}
	lists := src.called("agents")
	// The workbench went down: the source stops watching and says so.
	ctx, cancel := context.WithCancel(context.Background())
	m.c.ctx = ctx
	cmd := deliver(t, m, src, Live{})
	cancel() // the re-issued wait returns at once instead of lingering
	settle(m, cmd)
	if got := src.called("agents"); got != lists+1 {
		t.Errorf("after the watch stopped the screen should list: %d listings, want %d", got, lists+1)
	}
	if v := m.View(); !strings.Contains(v, "spoke-1  ✓ connected") {
		t.Errorf("the listing should show again:\n%s", v)
	}
}

// TestLiveDoesNotBlock: with nothing on the channel only the background
// command waits; Init, Update and View return at once.
func TestLiveDoesNotBlock(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(), agents: sampleAgents(), live: make(chan Live, 1)}
	m := newTestModel(src)
	start := time.Now()
	if m.Init() == nil {
		t.Fatal("Init started nothing")
	}
	wait := m.waitLive()
	got := make(chan tea.Msg, 1)
	go func() { got <- wait() }()

	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	press(m, "2")
	_ = m.View()
	press(m, "3")
	if v := m.View(); !strings.Contains(v, "podinfo") {
		t.Errorf("the screen should work while nothing is watched:\n%s", v)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the UI took %s with an empty channel", d)
	}
	select {
	case msg := <-got:
		t.Fatalf("the wait answered %T with nothing on the channel", msg)
	case <-time.After(100 * time.Millisecond):
	}
	src.live <- Live{Hub: "hub", AgentsSynced: true, Agents: sampleAgents()}
	select {
	case msg := <-got:
		if _, ok := msg.(liveMsg); !ok {
			t.Fatalf("the wait answered %T, want liveMsg", msg)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the wait did not deliver the pushed Live")
	}
}

func TestSendLiveKeepsNewest(t *testing.T) {
	s := &workbenchSource{live: make(chan Live, 1)}
	s.sendLive(Live{Hub: "old"})
	s.sendLive(Live{Hub: "new"}) // must not block with the old one unread
	if l := <-s.Live(); l.Hub != "new" {
		t.Errorf("got %q, want the newest", l.Hub)
	}
}

// TestHubWatchDebounces runs the informers on a fake dynamic client: the
// first full list arrives as a Live, and a burst of changes as far fewer
// messages than changes.
func TestHubWatchDebounces(t *testing.T) {
	scheme := runtime.NewScheme()
	lists := map[schema.GroupVersionResource]string{
		v1alpha1.ApplicationsResource: "ApplicationList",
		v1alpha1.AgentsResource:       "AgentList",
	}
	app := func(ns, name string) *unstructured.Unstructured {
		a := sampleApp(name, "Synced", "Healthy", "4f1c2a9be0d3c7aa")
		a.Namespace = ns
		u, err := a.Unstructured()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	agent := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Agent",
		"metadata": map[string]any{"name": "spoke-1", "namespace": "tether-system"},
		"status":   map[string]any{"connected": true, "version": "v0.1.0"},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, lists, app("spoke-1", "sample"), agent)

	var mu sync.Mutex
	var got []Live
	w := startHubWatch(dyn, "hub", "https://hub", func(l Live) {
		mu.Lock()
		got = append(got, l)
		mu.Unlock()
	}, discardLogger())
	defer w.close()
	last := func() (Live, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			return Live{}, 0
		}
		return got[len(got)-1], len(got)
	}
	waitUntil := func(what string, ok func(Live) bool) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if l, n := last(); n > 0 && ok(l) {
				return n
			}
			time.Sleep(20 * time.Millisecond)
		}
		l, n := last()
		t.Fatalf("%s: after %d messages the last is %+v", what, n, l)
		return 0
	}
	before := waitUntil("the first list", func(l Live) bool {
		return l.Hub == "hub" && l.AppsSynced && l.AgentsSynced && len(l.Apps) == 1 && len(l.Agents) == 1
	})
	if l, _ := last(); !l.Agents[0].Status.Connected || l.Apps[0].Namespace != "spoke-1" {
		t.Errorf("decoded wrongly: %+v", l)
	}

	res := dyn.Resource(v1alpha1.ApplicationsResource)
	const burst = 10
	for i := range burst {
		ns := "spoke-" + string(rune('a'+i))
		if _, err := res.Namespace(ns).Create(context.Background(), app(ns, "sample"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	after := waitUntil("the burst", func(l Live) bool { return len(l.Apps) == 1+burst })
	if n := after - before; n >= burst/2 {
		t.Errorf("a burst of %d changes became %d messages, want a few", burst, n)
	}
	if l, _ := last(); l.Apps[0].Namespace != "spoke-1" || l.Apps[1].Namespace != "spoke-a" {
		t.Errorf("Applications not sorted by namespace: %s, %s", l.Apps[0].Namespace, l.Apps[1].Namespace)
	}
}
