package cli

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// Each agent's line shows its outbox depth, the latest propagation delays
// each way (or "-" before one was measured) and its restarts.
func TestAgentTableShowsDepthLatencyAndRestarts(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	seen := metav1.NewTime(now.Add(-3 * time.Second))
	down, up := int64(42), int64(1530)
	agents := []v1alpha1.Agent{
		{ObjectMeta: metav1.ObjectMeta{Name: "spoke-2"}, Status: v1alpha1.AgentStatus{Pending: 0}},
		{ObjectMeta: metav1.ObjectMeta{Name: "spoke-1"}, Status: v1alpha1.AgentStatus{Connected: true, LastSeen: &seen, Version: "v0.1.0",
			Pending: 7, LastHubToSpokeMillis: &down, LastSpokeToHubMillis: &up, Restarts: 2}},
	}
	var b strings.Builder
	agentTable(&b, agents, now)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := []string{
		"AGENT    CONNECTED  LAST SEEN  OUTBOX  HUB→SPOKE  SPOKE→HUB  RESTARTS  VERSION",
		"spoke-1  yes        3s ago     7       42ms       1.5s       2         v0.1.0",
		"spoke-2  no         -          0       -          -          0         -",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
}
