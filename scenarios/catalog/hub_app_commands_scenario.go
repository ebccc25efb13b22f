package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/fleet"
)

// hubAppCommands is README's `tether app ... --context tether-hub` as a
// newcomer runs it: each command answers about the spoke the Application
// runs on, through the principal (refresh, sync) or the spoke itself
// (diff), in about the time the spoke takes.
func hubAppCommands() Scenario {
	return Scenario{
		Name:        "hub-app-commands",
		Description: "on the hub, app list -A shows every spoke's sample, refresh and sync go through the principal to the spoke and answer on the hub's copy, diff compares with the spoke",
		Labels:      []string{LabelFleet, LabelFast},
		Timeout:     3 * time.Minute,
		Steps: func(e *Env) []Step {
			spoke := e.Spokes()[0]
			hubArgs := func(args ...string) []string {
				return append(args, "-n", spoke, "--context", cluster.ContextName(Hub))
			}
			run := func(ctx context.Context, args ...string) (string, time.Duration, error) {
				start := time.Now()
				res := e.Tether(ctx, args...)
				took := time.Since(start)
				if res.ExitCode != 0 {
					return "", took, fmt.Errorf("tether %s: exit %d after %s: %s %s", strings.Join(args, " "), res.ExitCode, took.Round(time.Millisecond),
						lastLines(res.Stdout, 3), lastLines(res.Stderr, 3))
				}
				return res.Stdout, took, nil
			}
			return []Step{
				sampleReady(e),
				{Name: "app list -A on the hub lists every spoke's sample under SPOKE", Run: func(ctx context.Context) error {
					out, _, err := run(ctx, "app", "list", "-A", "--context", cluster.ContextName(Hub))
					if err != nil {
						return err
					}
					lines := strings.Split(strings.TrimSpace(out), "\n")
					if f := strings.Fields(lines[0]); len(f) == 0 || f[0] != "SPOKE" {
						return fmt.Errorf("app list -A on the hub: header %q, want a SPOKE column first", lines[0])
					}
					for _, s := range e.Spokes() {
						found := false
						for _, l := range lines[1:] {
							f := strings.Fields(l)
							if len(f) >= 3 && f[0] == s && f[1] == fleet.SampleApp && f[2] == v1alpha1.SyncStatusSynced {
								found = true
							}
						}
						if !found {
							return fmt.Errorf("app list -A on the hub has no row %q %s Synced:\n%s", s, fleet.SampleApp, out)
						}
					}
					return nil
				}},
				{Name: "app refresh on the hub answers from " + spoke + ": a new reconciledAt on the hub's copy, the annotation gone", Run: func(ctx context.Context) error {
					before, err := hubApp(ctx, e, spoke, fleet.SampleApp)
					if err != nil {
						return err
					}
					// reconciledAt has a resolution of a second: make sure
					// the answer's can differ from the last one.
					if at := before.Status.ReconciledAt; at != nil && time.Since(at.Time) < 1100*time.Millisecond {
						time.Sleep(1100*time.Millisecond - time.Since(at.Time))
					}
					out, took, err := run(ctx, hubArgs("app", "refresh", fleet.SampleApp, "--timeout", "30s")...)
					if err != nil {
						return fmt.Errorf("%w; principal log %s, agent log %s", err, e.ComponentLog("principal"), e.ComponentLog("agent-"+spoke))
					}
					e.Logf("refresh answered in %s: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
					if !strings.HasPrefix(out, fleet.SampleApp+": "+v1alpha1.SyncStatusSynced) {
						return fmt.Errorf("app refresh printed %q, want %s: Synced ...", out, fleet.SampleApp)
					}
					after, err := hubApp(ctx, e, spoke, fleet.SampleApp)
					if err != nil {
						return err
					}
					if v, ok := after.Annotations[v1alpha1.AnnotationRefresh]; ok {
						return fmt.Errorf("the hub's copy still has the refresh annotation %q after the command returned", v)
					}
					if after.Status.ReconciledAt == nil || (before.Status.ReconciledAt != nil && !after.Status.ReconciledAt.After(before.Status.ReconciledAt.Time)) {
						return fmt.Errorf("the hub's reconciledAt is %v, was %v: the spoke's compare did not come back; %s", after.Status.ReconciledAt, before.Status.ReconciledAt, lookHub(e, spoke, fleet.SampleApp))
					}
					if took > 20*time.Second {
						return fmt.Errorf("app refresh on the hub took %s; the spoke answers in about a second", took.Round(time.Millisecond))
					}
					return nil
				}},
				{Name: "app diff on the hub compares with " + spoke + ": in sync", Run: func(ctx context.Context) error {
					out, _, err := run(ctx, hubArgs("app", "diff", fleet.SampleApp)...)
					if err != nil {
						return err
					}
					if !strings.Contains(out, "is in sync with") || !strings.Contains(out, "on "+spoke) {
						return fmt.Errorf("app diff of the Synced sample on the hub printed %q, want in sync on %s", out, spoke)
					}
					return nil
				}},
				{Name: "app sync on the hub: the spoke's result comes back", Run: func(ctx context.Context) error {
					out, took, err := run(ctx, hubArgs("app", "sync", fleet.SampleApp, "--timeout", "60s")...)
					if err != nil {
						return err
					}
					e.Logf("sync answered in %s: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
					if !strings.HasPrefix(out, v1alpha1.OperationSucceeded) {
						return fmt.Errorf("app sync on the hub printed %q, want Succeeded", out)
					}
					return nil
				}},
			}
		},
	}
}
