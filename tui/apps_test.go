package tui

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// appsModelWithData is the root on the Applications screen after one
// probe and one listing.
func appsModelWithData(t *testing.T) (*model, *fakeSource) {
	t.Helper()
	src := &fakeSource{
		snap:    sampleSnapshot(),
		apps:    sampleApps(),
		appErrs: map[string]error{"hub": errors.New("no Application API here yet (the CRD is not installed)")},
	}
	m := newTestModel(src)
	press(m, "3")
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	return m, src
}

func TestAppsListsEveryCluster(t *testing.T) {
	m, _ := appsModelWithData(t)
	v := m.View()
	for _, want := range []string{
		"CLUSTER", "SYNC", "HEALTH", "REVISION", "LAST SYNC",
		"hub      ✗ no Application API here yet (the CRD is not installed)",
		"> spoke-1  spoke-1  guestbook  Synced     Healthy      4f1c2a9b  1m30s ago",
		"  spoke-1  spoke-1  podinfo    OutOfSync  Progressing  9d8e7f6a  1m30s ago",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

func TestAppsDetailAndActions(t *testing.T) {
	m, src := appsModelWithData(t)
	press(m, "j", "enter")
	v := m.View()
	for _, want := range []string{
		"podinfo on spoke-1 · tether-system",
		"http://git.tether-system/sample.git (revision main, path guestbook)",
		"KIND", "Deployment  guestbook  guestbook-ui  OutOfSync  Progressing  1 of 2 replicas available",
		"Service", "Healthy",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("detail lacks %q:\n%s", want, v)
		}
	}
	press(m, "s")
	press(m, "r")
	if got, want := src.recorded(), []string{"sync spoke-1/podinfo", "refresh spoke-1/podinfo"}; !slices.Equal(got, want) {
		t.Errorf("source calls = %v, want %v", got, want)
	}
	if v := m.View(); !strings.Contains(v, "refresh of podinfo on spoke-1 requested") {
		t.Errorf("the last action should be reported:\n%s", v)
	}
	press(m, "esc")
	if v := m.View(); !strings.Contains(v, "LAST SYNC") {
		t.Errorf("esc should go back to the list:\n%s", v)
	}
}

func TestAppsActionErrorIsInline(t *testing.T) {
	m, src := appsModelWithData(t)
	src.mu.Lock()
	src.apps["spoke-1"] = append(src.apps["spoke-1"], sampleApp("broken", "Unknown", "", ""))
	src.mu.Unlock()
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	press(m, "G", "r")
	if v := m.View(); !strings.Contains(v, "refresh of broken on spoke-1 failed: the server is on fire") {
		t.Errorf("a failed action should show its error:\n%s", v)
	}
}

func TestAppsCursorSurvivesRefresh(t *testing.T) {
	m, src := appsModelWithData(t)
	press(m, "j") // podinfo
	src.mu.Lock()
	src.apps["spoke-1"] = append([]v1alpha1.Application{sampleApp("aaa-first", "Synced", "Healthy", "1")}, src.apps["spoke-1"]...)
	src.mu.Unlock()
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	a := m.screens[2].(*appsModel)
	if r, ok := a.selected(); !ok || r.app.Name != "podinfo" {
		t.Errorf("selection moved to %+v after a refresh", r.app)
	}
}

func TestAppsWithoutClusters(t *testing.T) {
	m := newTestModel(&fakeSource{})
	press(m, "3")
	_, cmd := m.Update(statusMsg{snap: Snapshot{}})
	settle(m, cmd)
	if v := m.View(); !strings.Contains(v, "No clusters: bring the workbench up") {
		t.Errorf("no clusters should point at the Clusters screen:\n%s", v)
	}
	press(m, "enter", "s", "r", "j") // nothing to act on: no panic
}

// On the hub the Applications live in one namespace per spoke: the
// namespace is shown as the spoke, and actions go to that namespace.
func TestAppsHubNamespacesAreSpokes(t *testing.T) {
	hubApp := func(ns, rev string) v1alpha1.Application {
		a := sampleApp("sample", "Synced", "Healthy", rev)
		a.Namespace = ns
		return a
	}
	src := &fakeSource{snap: sampleSnapshot(), apps: map[string][]v1alpha1.Application{
		"hub": {hubApp("spoke-1", "aaaaaaaa11"), hubApp("spoke-2", "bbbbbbbb22")},
	}}
	m := newTestModel(src)
	press(m, "3")
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	v := m.View()
	for _, want := range []string{
		"> hub      spoke-1  sample  Synced  Healthy  aaaaaaaa  1m30s ago",
		"  hub      spoke-2  sample  Synced  Healthy  bbbbbbbb  1m30s ago",
		"spoke-1  no Applications in tether-system",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	press(m, "j", "enter")
	if v := m.View(); !strings.Contains(v, "sample on hub · spoke-2") {
		t.Errorf("detail of the second hub Application:\n%s", v)
	}
}

func TestAppsMakeChangeCyclesReplicasAndShowsCommit(t *testing.T) {
	m, src := appsModelWithData(t)
	src.shas = []string{"0123456789abcdef", "fedcba9876543210"}
	press(m, "c")
	if v := m.View(); !strings.Contains(v, "committed 01234567: scale the sample to 2 replicas") {
		t.Errorf("status line lacks the commit:\n%s", v)
	}
	press(m, "c")
	if v := m.View(); !strings.Contains(v, "committed fedcba98: scale the sample to 3 replicas") {
		t.Errorf("status line lacks the second commit:\n%s", v)
	}
	press(m, "c") // no commit left: the fake fails like a workbench without the system
	if v := m.View(); !strings.Contains(v, "make a change (scale the sample to 4) failed: the GitOps system is not up") {
		t.Errorf("failure not shown:\n%s", v)
	}
	press(m, "c")
	if got, want := src.recorded(), []string{"change 2", "change 3", "change 4", "change 1"}; !slices.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
}

// A second press while a commit is in flight is ignored, not queued.
func TestAppsMakeChangeOneAtATime(t *testing.T) {
	m, _ := appsModelWithData(t)
	_, first := m.Update(keyMsg("c"))
	_, second := m.Update(keyMsg("c"))
	if first == nil || second != nil {
		t.Fatalf("first press must start a commit, the second nothing: %v, %v", first != nil, second != nil)
	}
	if v := m.View(); !strings.Contains(v, "committing a change: scale the sample to 2 replicas…") {
		t.Errorf("no progress shown:\n%s", v)
	}
}
