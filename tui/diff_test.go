package tui

import (
	"fmt"
	"strings"
	"testing"
)

func sampleDiff() Diff {
	var unified strings.Builder
	unified.WriteString("--- live apps/v1/Deployment/guestbook/guestbook-ui\n+++ git apps/v1/Deployment/guestbook/guestbook-ui\n@@ -3,3 +3,3 @@\n spec:\n-  replicas: 1\n+  replicas: 2\n")
	var long strings.Builder
	long.WriteString("--- live v1/ConfigMap/guestbook/settings\n+++ git v1/ConfigMap/guestbook/settings\n@@ -1,30 +1,30 @@\n data:\n")
	for i := range 30 {
		fmt.Fprintf(&long, "-  key%02d: old\n+  key%02d: new\n", i, i)
	}
	return Diff{Revision: "9d8e7f6a5b4c3d2e", Resources: []ResourceDiff{
		{Resource: "apps/v1/Deployment/guestbook/guestbook-ui", Action: "update", Unified: unified.String()},
		{Resource: "v1/ConfigMap/guestbook/settings", Action: "update", Unified: long.String()},
		{Resource: "v1/Service/guestbook/old-ui", Action: "prune"},
	}}
}

// diffModelOn is the root model on the detail of spoke-1's podinfo.
func diffModelOn(src *fakeSource) (*model, *appsModel) {
	m := newTestModel(src)
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	press(m, "3", "j", "enter")
	return m, m.screens[2].(*appsModel)
}

func TestDiffView(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(),
		diffs: map[string]Diff{"spoke-1/tether-system/podinfo": sampleDiff()}}
	m, am := diffModelOn(src)
	if v := m.View(); !strings.Contains(v, "d diff") {
		t.Fatalf("the detail view should offer the diff:\n%s", v)
	}
	press(m, "d")
	if got := src.recorded(); len(got) != 1 || got[0] != "diff spoke-1/tether-system/podinfo" {
		t.Fatalf("source calls = %v", got)
	}
	v := m.View()
	for _, want := range []string{
		"Diff of podinfo on spoke-1 · tether-system (what a sync would apply)",
		"A sync to 9d8e7f6a would change 3 resources · 0%",
		"Update apps/v1/Deployment/guestbook/guestbook-ui", "-  replicas: 1", "+  replicas: 2",
		"esc back",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	// It scrolls: the prune at the end comes into view.
	if strings.Contains(v, "Prune v1/Service") {
		t.Fatalf("the whole diff fits; the test needs a longer one")
	}
	for range 10 {
		press(m, "f")
	}
	if v := m.View(); !strings.Contains(v, "Prune v1/Service/guestbook/old-ui") || !strings.Contains(v, "100%") {
		t.Errorf("paging down should reach the end:\n%s", v)
	}
	press(m, "esc")
	if am.diff != nil || am.open == "" {
		t.Error("esc should go back to the detail view")
	}
}

func TestDiffInSyncAndFailure(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps(),
		diffs: map[string]Diff{"spoke-1/tether-system/guestbook": {Revision: "4f1c2a9be0d3c7aa"}}}
	m := newTestModel(src)
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	press(m, "3", "enter", "d")
	if v := m.View(); !strings.Contains(v, "✓ in sync with 4f1c2a9b: a sync would change nothing") {
		t.Errorf("an in-sync app should say so:\n%s", v)
	}
	press(m, "esc", "esc", "j", "enter", "d")
	if v := m.View(); !strings.Contains(v, "✗ diff failed: git fetch http://git.tether-system/sample.git: connection refused") {
		t.Errorf("a failed diff should say why:\n%s", v)
	}
}

// A diff answering after the user left it (or opened another) is dropped.
func TestDiffLateAnswerDropped(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps()}
	m, am := diffModelOn(src)
	_, _ = m.Update(keyMsg("d")) // the request is never run
	id := am.diff.id
	press(m, "d") // a second request replaces it
	m.Update(diffMsg{id: id, diff: sampleDiff()})
	if strings.Contains(m.View(), "would change 3") {
		t.Error("an earlier request's answer was shown")
	}
}
