package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

func sampleAgents() []v1alpha1.Agent {
	seen := metav1.NewTime(t0.Add(-5 * time.Second))
	down, up := int64(42), int64(1530)
	return []v1alpha1.Agent{{
		ObjectMeta: metav1.ObjectMeta{Name: "spoke-1", Namespace: "tether-system"},
		Status: v1alpha1.AgentStatus{Connected: true, LastSeen: &seen, Version: "v0.1.0", Applications: 1,
			Pending: 3, LastHubToSpokeMillis: &down, LastSpokeToHubMillis: &up, Restarts: 2},
	}}
}

func agentsModelWith(t *testing.T, src *fakeSource) *model {
	t.Helper()
	m := newTestModel(src)
	press(m, "2")
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	return m
}

func TestAgentsPerSpoke(t *testing.T) {
	snap := sampleSnapshot()
	snap.Clusters = append(snap.Clusters, ClusterInfo{Name: "spoke-2", Role: "spoke", Provider: "embedded", Ready: true})
	m := agentsModelWith(t, &fakeSource{snap: snap, agents: sampleAgents()})
	v := m.View()
	for _, want := range []string{
		"SPOKE    AGENT              LAST SEEN  VERSION  APPS  OUTBOX  HUB→SPOKE  SPOKE→HUB  RESTARTS",
		"spoke-1  ✓ connected        5s ago     v0.1.0   1     3       42ms       1.5s       2",
		"spoke-2  ✗ never connected  -          -        -     -       -          -          -",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "  hub ") {
		t.Errorf("the hub has no agent:\n%s", v)
	}
}

func TestAgentsCRDMissingIsInline(t *testing.T) {
	err := errors.New("no Agent API on the hub hub yet (the CRD is not installed): bring the workbench up with u on the Clusters screen")
	m := agentsModelWith(t, &fakeSource{snap: sampleSnapshot(), agentsErr: err})
	if v := m.View(); !strings.Contains(v, "✗ no Agent API on the hub hub yet (the CRD is not installed)") {
		t.Errorf("missing CRD not explained:\n%s", v)
	}
}

func TestAgentsNoClusters(t *testing.T) {
	m := agentsModelWith(t, &fakeSource{snap: Snapshot{StateDir: "/state/tether"}})
	if v := m.View(); !strings.Contains(v, "No clusters: bring the workbench up on the Clusters screen.") {
		t.Errorf("empty workbench:\n%s", v)
	}
}

// On an 80-column terminal the version and the Application count give
// way; the outbox depth, the delays and the restarts stay.
func TestAgentsNarrowKeepsDeliveryColumns(t *testing.T) {
	snap := sampleSnapshot()
	snap.Clusters = append(snap.Clusters, ClusterInfo{Name: "spoke-2", Role: "spoke", Provider: "embedded", Ready: true})
	m := agentsModelWith(t, &fakeSource{snap: snap, agents: sampleAgents()})
	m.Update(tea.WindowSizeMsg{Width: defaultW, Height: defaultH})
	v := m.View()
	for _, want := range []string{
		"SPOKE    AGENT              LAST SEEN  OUTBOX  HUB→SPOKE  SPOKE→HUB  RESTARTS",
		"spoke-1  ✓ connected        5s ago     3       42ms       1.5s       2",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	for _, l := range strings.Split(v, "\n") {
		if w := lipgloss.Width(l); w > defaultW {
			t.Errorf("line %d wide, over %d: %q", w, defaultW, l)
		}
	}
}
