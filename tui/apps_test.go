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
	press(m, "2")
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
		"> spoke-1  guestbook  Synced     Healthy      4f1c2a9b  1m30s ago",
		"  spoke-1  podinfo    OutOfSync  Progressing  9d8e7f6a  1m30s ago",
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
	a := m.screens[1].(*appsModel)
	if r, ok := a.selected(); !ok || r.app.Name != "podinfo" {
		t.Errorf("selection moved to %+v after a refresh", r.app)
	}
}

func TestAppsWithoutClusters(t *testing.T) {
	m := newTestModel(&fakeSource{})
	press(m, "2")
	_, cmd := m.Update(statusMsg{snap: Snapshot{}})
	settle(m, cmd)
	if v := m.View(); !strings.Contains(v, "No clusters: bring the workbench up") {
		t.Errorf("no clusters should point at the Clusters screen:\n%s", v)
	}
	press(m, "enter", "s", "r", "j") // nothing to act on: no panic
}
