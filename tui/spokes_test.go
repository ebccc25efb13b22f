package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestClustersAddSpoke(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot()}
	m := newTestModel(src)
	m.Update(statusMsg{snap: src.snap})
	press(m, "a")
	v := m.View()
	for _, want := range []string{"Add a spoke", "New spoke", "spoke-2", "enter confirm • esc cancel"} {
		if !strings.Contains(v, want) {
			t.Errorf("the add prompt lacks %q:\n%s", want, v)
		}
	}
	// Keys that are global elsewhere type into the prompt.
	press(m, "ctrl+u", "q", "2")
	if !m.screens[0].(*clustersModel).Capturing() || m.active != 0 {
		t.Fatalf("q or 2 left the prompt")
	}
	press(m, "_X", "enter")
	if v := m.View(); !strings.Contains(v, `cannot add spoke "q2_X"`) || !strings.Contains(v, "not DNS-safe") {
		t.Errorf("a bad name should be refused in the prompt:\n%s", v)
	}
	press(m, "ctrl+u", "spoke-1", "enter")
	if v := m.View(); !strings.Contains(v, `cannot add spoke "spoke-1": the workbench has it already`) {
		t.Errorf("an existing spoke should be refused:\n%s", v)
	}
	if len(src.recorded()) != 0 {
		t.Fatalf("a refused name reached the source: %v", src.recorded())
	}
	press(m, "ctrl+u", "spoke-3", "enter")
	if got := src.recorded(); len(got) != 1 || got[0] != "add spoke spoke-3" {
		t.Fatalf("source calls = %v, want [add spoke spoke-3]", got)
	}
	if v := m.View(); !strings.Contains(v, "Adding spoke spoke-3 ✓ done in 0s") {
		t.Errorf("a finished add should say so:\n%s", v)
	}
}

func TestClustersRemoveSpoke(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), removeSpoke: func(context.Context, string) error {
		return errors.New("delete cluster spoke-1: etcd will not stop")
	}}
	m := newTestModel(src)
	m.Update(statusMsg{snap: src.snap})
	press(m, "x")
	if v := m.View(); !strings.Contains(v, "Remove a spoke") || !strings.Contains(v, "spoke-1") {
		t.Fatalf("the remove prompt should offer the last spoke:\n%s", v)
	}
	press(m, "ctrl+u", "hub", "enter")
	if v := m.View(); !strings.Contains(v, `cannot remove "hub": it is the hub`) {
		t.Errorf("the hub should be refused:\n%s", v)
	}
	press(m, "esc")
	if m.screens[0].(*clustersModel).Capturing() {
		t.Fatal("esc did not close the prompt")
	}
	press(m, "x", "enter")
	if got := src.recorded(); len(got) != 1 || got[0] != "remove spoke spoke-1" {
		t.Fatalf("source calls = %v", got)
	}
	if v := m.View(); !strings.Contains(v, "Removing spoke spoke-1 ✗ failed after 0s: delete cluster spoke-1: etcd will not stop") {
		t.Errorf("a failed remove should say why:\n%s", v)
	}
}

func TestClustersSpokeKeysNeedAWorkbench(t *testing.T) {
	m := newTestModel(&fakeSource{})
	m.Update(statusMsg{snap: Snapshot{StateDir: "/state/tether"}})
	press(m, "a")
	if v := m.View(); !strings.Contains(v, "no workbench to change") || m.screens[0].(*clustersModel).Capturing() {
		t.Errorf("a without a workbench should explain, not prompt:\n%s", v)
	}
	snap := sampleSnapshot()
	snap.Clusters = snap.Clusters[:1]
	m.Update(statusMsg{snap: snap})
	press(m, "x")
	if v := m.View(); !strings.Contains(v, "no spokes to remove") {
		t.Errorf("x without spokes should explain:\n%s", v)
	}
}
