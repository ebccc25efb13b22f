package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// removalLog records the steps a spokeRemoval ran, in order.
type removalLog struct{ steps []string }

func (l *removalLog) step(name string, err error) func(context.Context) error {
	return func(context.Context) error { l.steps = append(l.steps, name); return err }
}

func TestSpokeRemovalBringsTheFleetBackAfterAFailure(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name           string
		stop, apps, rm error
		wantSteps      []string
		wantInErr      []string
	}{
		{"agent does not stop", boom, nil, nil,
			[]string{"stop", "up"}, []string{"spoke-1", "stop the agent", "boom", "back up", "tether spoke remove spoke-1"}},
		{"hub namespace not deleted", nil, boom, nil,
			[]string{"stop", "apps", "up"}, []string{"spoke-1", "boom", "back up", "tether spoke remove spoke-1"}},
		{"cluster not removed", nil, nil, boom,
			[]string{"stop", "apps", "rm", "up"}, []string{"spoke-1", "boom", "back up", "tether spoke remove spoke-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &removalLog{}
			r := spokeRemoval{
				name:          "spoke-1",
				stopAgents:    []func(context.Context) error{l.step("stop", tc.stop)},
				deleteApps:    l.step("apps", tc.apps),
				removeCluster: l.step("rm", tc.rm),
				fleetUp:       l.step("up", nil),
			}
			err := r.run(context.Background())
			if !errors.Is(err, boom) {
				t.Fatalf("run() = %v; want the cause", err)
			}
			for _, want := range tc.wantInErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if strings.Join(l.steps, ",") != strings.Join(tc.wantSteps, ",") {
				t.Errorf("steps = %v, want %v", l.steps, tc.wantSteps)
			}
		})
	}
}

func TestSpokeRemovalSaysWhatToDoWhenTheFleetDoesNotComeBack(t *testing.T) {
	l := &removalLog{}
	r := spokeRemoval{
		name:          "spoke-1",
		deleteApps:    l.step("apps", errors.New("boom")),
		removeCluster: l.step("rm", nil),
		fleetUp:       l.step("up", errors.New("no principal")),
	}
	err := r.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no principal") || !strings.Contains(err.Error(), "tether up") {
		t.Fatalf("run() = %v; want both failures and `tether up`", err)
	}
}

func TestSpokeRemovalRunsAllStepsWhenNothingFails(t *testing.T) {
	l := &removalLog{}
	r := spokeRemoval{
		name:          "spoke-1",
		stopAgents:    []func(context.Context) error{l.step("stop", nil)},
		deleteApps:    l.step("apps", nil),
		removeCluster: l.step("rm", nil),
		fleetUp:       l.step("up", nil),
	}
	if err := r.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.steps, ","); got != "stop,apps,rm,up" {
		t.Errorf("steps = %s", got)
	}
	// Without the GitOps system only the cluster goes, and its failure is
	// returned as is.
	l = &removalLog{}
	r = spokeRemoval{name: "spoke-1", removeCluster: l.step("rm", errors.New("boom"))}
	if err := r.run(context.Background()); err == nil || !strings.Contains(err.Error(), "spoke-1") {
		t.Errorf("run() = %v", err)
	}
}
