package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

func TestClustersShowsStatus(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot()}
	m := newTestModel(src)
	m.Update(statusMsg{snap: sampleSnapshot()})
	v := m.View()
	for _, want := range []string{
		"embedded provider · /state/tether",
		"hub", "https://127.0.0.1:40001", "1/1", "✓ ready",
		// The reason does not fit in its cell at 100 columns: it goes
		// under the table whole, what to do included.
		"spoke-1", "✗ not ready", "✗ spoke-1: kube-scheduler is not running; run `tether up` to restart it",
		"hub processes: etcd alive · kube-apiserver alive",
		"spoke-1 processes: etcd alive · kube-scheduler DEAD",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	// Where it fits, it stays in the READY column.
	m.Update(tea.WindowSizeMsg{Width: 150, Height: 30})
	if v := m.View(); !strings.Contains(v, "1/1    ✗ kube-scheduler is not running; run `tether up` to restart it") ||
		strings.Contains(v, "not ready") {
		t.Errorf("at 150 columns the reason belongs in the table:\n%s", v)
	}
}

func TestClustersEmptyAndError(t *testing.T) {
	m := newTestModel(&fakeSource{})
	if v := m.View(); !strings.Contains(v, "Reading the workbench") {
		t.Errorf("before the first probe the screen should say it is reading:\n%s", v)
	}
	m.Update(statusMsg{snap: Snapshot{StateDir: "/state/tether"}})
	if v := m.View(); !strings.Contains(v, "No workbench in /state/tether. Press u") {
		t.Errorf("an empty workbench should say how to start:\n%s", v)
	}
	m.Update(statusMsg{err: errors.New("state.json: permission denied")})
	if v := m.View(); !strings.Contains(v, "Status failed: state.json: permission denied") {
		t.Errorf("a failed probe should show its error:\n%s", v)
	}
}

func TestClustersUpShowsSteps(t *testing.T) {
	release := make(chan struct{})
	src := &fakeSource{up: func(ctx context.Context) error {
		<-release
		return nil
	}}
	m := newTestModel(src)
	cl := m.screens[0].(*clustersModel)
	_, cmd := m.Update(keyMsg("u"))
	if cl.op != "up" {
		t.Fatalf("u should start up, op = %q", cl.op)
	}
	// A second u while up runs must not start another.
	if _, again := m.Update(keyMsg("u")); again != nil {
		t.Errorf("a second u while up runs returned a command")
	}
	m.Update(stepStartMsg{id: 1, title: "build control plane", at: t0.Add(-3 * time.Second)})
	m.Update(stepUpdateMsg{id: 1, detail: "1200/2400 packages"})
	m.Update(stepStartMsg{id: 2, title: "create hub", at: t0.Add(-2 * time.Second)})
	m.Update(stepDoneMsg{id: 2, at: t0.Add(-500 * time.Millisecond)})
	m.Update(stepStartMsg{id: 3, title: "create spoke-1", at: t0.Add(-2 * time.Second)})
	m.Update(stepDoneMsg{id: 3, err: errors.New("port 6443 is taken"), at: t0.Add(-time.Second)})
	v := m.View()
	for _, want := range []string{
		"Bringing the workbench up",
		"build control plane 3s · 1200/2400 packages",
		"✓ create hub 1.5s",
		"✗ create spoke-1 1s port 6443 is taken",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	close(release)
	settle(m, cmd)
	if got := src.recorded(); len(got) != 1 || got[0] != "up" {
		t.Errorf("source calls = %v, want [up]", got)
	}
	if cl.op != "" || cl.lastOp != "up" {
		t.Errorf("after up ends: op %q, lastOp %q", cl.op, cl.lastOp)
	}
	if v := m.View(); !strings.Contains(v, "✓ done in 0s") {
		t.Errorf("a finished up should say so:\n%s", v)
	}
}

func TestClustersUpFailureIsShown(t *testing.T) {
	src := &fakeSource{up: func(context.Context) error { return errors.New("no Docker engine and no Go toolchain") }}
	m := newTestModel(src)
	press(m, "u")
	if v := m.View(); !strings.Contains(v, "✗ failed after 0s: no Docker engine and no Go toolchain") {
		t.Errorf("a failed up should show why:\n%s", v)
	}
}

func TestClustersDownNeedsConfirmation(t *testing.T) {
	src := &fakeSource{}
	m := newTestModel(src)
	press(m, "d")
	if !strings.Contains(m.View(), "Press d again") {
		t.Fatalf("the first d should ask for confirmation:\n%s", m.View())
	}
	if len(src.recorded()) != 0 {
		t.Fatalf("down ran without confirmation")
	}
	press(m, "x") // any other key cancels
	press(m, "d")
	press(m, "j")
	if len(src.recorded()) != 0 {
		t.Fatalf("down ran after a cancelled confirmation: %v", src.recorded())
	}
	press(m, "d", "d")
	if got := src.recorded(); len(got) != 1 || got[0] != "down" {
		t.Fatalf("source calls = %v, want [down]", got)
	}
}

func TestClustersWrapsLongProcessLists(t *testing.T) {
	snap := sampleSnapshot()
	for _, n := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
		snap.Clusters[0].Processes = append(snap.Clusters[0].Processes, Process{Name: n, Alive: n != "kwok"})
	}
	m := newTestModel(&fakeSource{snap: snap})
	m.Update(tea.WindowSizeMsg{Width: 70, Height: 30})
	m.Update(statusMsg{snap: snap})
	v := m.View()
	if !strings.Contains(v, "kwok DEAD") {
		t.Errorf("the last process must not be cut off:\n%s", v)
	}
}
