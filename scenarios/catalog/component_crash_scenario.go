package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// componentCrash kills the process of each kind of GitOps component, not
// its supervisor, as a crash would: each must come back by itself, as a
// Pod's container does on kind, and `tether status` must count the
// restart. Embedded only: on kind the kubelet does this, and agent-restart
// covers a deleted pod there.
func componentCrash() Scenario {
	return Scenario{
		Name:        "component-crash",
		Description: "the principal, an agent, the Git server and the service proxy, each SIGKILLed, come back by themselves within seconds; `tether status` counts the restarts and commits still converge",
		Labels:      []string{LabelFleet, LabelChaos, LabelEmbeddedOnly},
		Timeout:     6 * time.Minute,
		Steps: func(e *Env) []Step {
			victims := []string{"principal", "agent-" + e.Spokes()[0], "git", "service-proxy"}
			var before map[string]int
			steps := []Step{
				sampleReady(e),
				{Name: "read each component's restart count from `tether status`", Run: func(ctx context.Context) (err error) {
					before, err = componentRestarts(ctx, e)
					if err == nil {
						e.Logf("restarts before: %v", before)
					}
					return err
				}},
			}
			for _, name := range victims {
				steps = append(steps, Step{Name: "SIGKILL " + name + "'s process; its supervisor starts it again and it answers healthy", Run: func(ctx context.Context) error {
					_, err := crashComponent(ctx, e, name)
					return err
				}})
			}
			return append(steps,
				Step{Name: "`tether status` shows one more restart for each killed component, none for the others", Run: func(ctx context.Context) error {
					after, err := componentRestarts(ctx, e)
					if err != nil {
						return err
					}
					e.Logf("restarts after: %v", after)
					var wrong []string
					for name, n := range before {
						want := n
						if slices.Contains(victims, name) {
							want++
						}
						if after[name] != want {
							wrong = append(wrong, fmt.Sprintf("%s has %d, want %d", name, after[name], want))
						}
					}
					if len(wrong) > 0 {
						return fmt.Errorf("restart counts in `tether status`: %s", strings.Join(wrong, "; "))
					}
					return nil
				}},
				Step{Name: "a new commit converges on every spoke", Run: func(ctx context.Context) error {
					n, err := nextReplicas(ctx, e)
					if err != nil {
						return err
					}
					sha, err := scaleSample(ctx, e, n)
					if err != nil {
						return err
					}
					return converged(ctx, e, sha, n, 90*time.Second)
				}},
			)
		},
	}
}
