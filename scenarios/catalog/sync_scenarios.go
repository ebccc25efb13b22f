package catalog

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/sample"
)

func fleetRollout() Scenario {
	return Scenario{
		Name:        "fleet-rollout",
		Description: "a commit to the sample repository reaches every spoke, and the hub shows the fleet Synced at it",
		Labels:      []string{LabelFleet, LabelFast},
		Timeout:     4 * time.Minute,
		Steps: func(e *Env) []Step {
			var sha string
			var n int
			return []Step{
				sampleReady(e),
				{Name: "commit a new replica count to the sample repository", Run: func(ctx context.Context) (err error) {
					if n, err = nextReplicas(ctx, e); err != nil {
						return err
					}
					sha, err = scaleSample(ctx, e, n)
					return err
				}},
				{Name: "every spoke converges at the commit", Run: func(ctx context.Context) error {
					return converged(ctx, e, sha, n, 90*time.Second)
				}},
				{Name: "the hub shows every agent connected", Run: func(ctx context.Context) error {
					return eventually(ctx, 30*time.Second, "every agent connected", func(ctx context.Context) error {
						for _, s := range e.Spokes() {
							if err := agentConnected(ctx, e, s); err != nil {
								return err
							}
						}
						return nil
					})
				}},
			}
		},
	}
}

func driftSelfHeal() Scenario {
	return Scenario{
		Name:        "drift-self-heal",
		Description: "a hand edit of a managed Deployment, or of the spoke's copy of an Application, is reverted",
		Labels:      []string{LabelGitOps, LabelFleet, LabelFast},
		Timeout:     3 * time.Minute,
		Steps: func(e *Env) []Step {
			spoke := e.Spokes()[0]
			return []Step{
				sampleReady(e),
				{Name: "scale the sample Deployment on " + spoke + " by hand; the agent puts Git's count back", Run: func(ctx context.Context) error {
					want, err := sampleReplicas(ctx, e, spoke)
					if err != nil {
						return err
					}
					cs, err := e.Kube(spoke)
					if err != nil {
						return err
					}
					patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, want+5)
					if _, err := cs.AppsV1().Deployments(fleet.SampleNamespace).Patch(ctx, sample.AppName, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
						return fmt.Errorf("edit Deployment %s/%s on %s: %w", fleet.SampleNamespace, sample.AppName, spoke, err)
					}
					e.Logf("scaled %s/%s on %s to %d by hand", fleet.SampleNamespace, sample.AppName, spoke, want+5)
					return eventually(ctx, 30*time.Second, "drift reverted", func(ctx context.Context) error {
						return wantReplicas(ctx, e, spoke, want)
					})
				}},
				{Name: "point " + spoke + "'s copy of the sample Application elsewhere; the agent puts the hub's spec back", Run: func(ctx context.Context) error {
					dyn, err := e.Dynamic(spoke)
					if err != nil {
						return err
					}
					res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace("tether-system")
					if _, err := res.Patch(ctx, fleet.SampleApp, types.MergePatchType, []byte(`{"spec":{"source":{"path":"plain"}}}`), metav1.PatchOptions{}); err != nil {
						return fmt.Errorf("edit Application tether-system/%s on %s: %w", fleet.SampleApp, spoke, err)
					}
					want := sample.OverlayDir(spoke)
					return eventually(ctx, 30*time.Second, "the hub's spec restored on "+spoke, func(ctx context.Context) error {
						u, err := spokeApp(ctx, e, spoke, fleet.SampleApp)
						if err != nil {
							return err
						}
						p, _, _ := unstructured.NestedString(u.Object, "spec", "source", "path")
						if p != want {
							return fmt.Errorf("Application tether-system/%s on %s has path %q, want %q (agent log %s)", fleet.SampleApp, spoke, p, want, e.ComponentLog("agent-"+spoke))
						}
						return nil
					})
				}},
				{Name: "the hub shows " + spoke + " Synced and Healthy again", Run: func(ctx context.Context) error {
					return eventually(ctx, time.Minute, spoke+" Synced", func(ctx context.Context) error {
						return syncedAt(ctx, e, spoke, fleet.SampleApp, "")
					})
				}},
			}
		},
	}
}

func prune() Scenario {
	const folder = "scenarios/prune"
	return Scenario{
		Name:        "prune",
		Description: "a file removed from Git is deleted with prune on, and kept and reported with prune off until a sync --prune",
		Labels:      []string{LabelGitOps},
		Timeout:     4 * time.Minute,
		Steps: func(e *Env) []Step {
			spoke := e.Spokes()[0]
			var sha string
			cmGone := func(ctx context.Context, ns string) error {
				cs, err := e.Kube(spoke)
				if err != nil {
					return err
				}
				_, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, "scn-prune-b", metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				if err != nil {
					return err
				}
				return fmt.Errorf("ConfigMap %s/scn-prune-b still exists on %s", ns, spoke)
			}
			return []Step{
				{Name: "two ConfigMaps in Git, two Applications on " + spoke + " (prune on, prune off)", Run: func(ctx context.Context) error {
					if _, err := commitFiles(ctx, e, folder, map[string]string{
						"a.yaml": configMapYAML("scn-prune-a", "a"),
						"b.yaml": configMapYAML("scn-prune-b", "b"),
					}); err != nil {
						return err
					}
					if err := createHubApp(ctx, e, spoke, "scn-prune-on", folder, "scn-prune-on", automated(true)); err != nil {
						return err
					}
					if err := createHubApp(ctx, e, spoke, "scn-prune-off", folder, "scn-prune-off", automated(false)); err != nil {
						return err
					}
					return eventually(ctx, 90*time.Second, "both Applications Synced", func(ctx context.Context) error {
						if err := syncedAt(ctx, e, spoke, "scn-prune-on", ""); err != nil {
							return err
						}
						return syncedAt(ctx, e, spoke, "scn-prune-off", "")
					})
				}},
				{Name: "remove b.yaml from Git", Run: func(ctx context.Context) (err error) {
					sha, err = e.Commit(ctx, "prune: remove b.yaml", sample.RemoveFile(folder+"/b.yaml"))
					return err
				}},
				{Name: "prune on: scn-prune-b is deleted from " + spoke, Run: func(ctx context.Context) error {
					return eventually(ctx, time.Minute, "scn-prune-b pruned", func(ctx context.Context) error {
						if err := syncedAt(ctx, e, spoke, "scn-prune-on", sha); err != nil {
							return err
						}
						return cmGone(ctx, "scn-prune-on")
					})
				}},
				{Name: "prune off: scn-prune-b stays and the hub reports it as requiring pruning", Run: func(ctx context.Context) error {
					err := eventually(ctx, time.Minute, "scn-prune-off OutOfSync with scn-prune-b to prune", func(ctx context.Context) error {
						app, err := hubApp(ctx, e, spoke, "scn-prune-off")
						if err != nil {
							return err
						}
						if app.Status.Sync.Revision != sha || app.Status.Sync.Status != v1alpha1.SyncStatusOutOfSync {
							return fmt.Errorf("hub Application %s/scn-prune-off is %s at %s, want OutOfSync at %s; %s",
								spoke, cmp.Or(app.Status.Sync.Status, "-"), short(app.Status.Sync.Revision), short(sha), lookHub(e, spoke, "scn-prune-off"))
						}
						for _, r := range app.Status.Resources {
							if r.Name == "scn-prune-b" && r.RequiresPruning {
								return nil
							}
						}
						return fmt.Errorf("hub Application %s/scn-prune-off does not list scn-prune-b as requiring pruning: %+v", spoke, app.Status.Resources)
					})
					if err != nil {
						return err
					}
					if cmGone(ctx, "scn-prune-off") == nil {
						return fmt.Errorf("prune is off, yet ConfigMap scn-prune-off/scn-prune-b was deleted on %s (agent log %s)", spoke, e.ComponentLog("agent-"+spoke))
					}
					return nil
				}},
				{Name: "tether app sync --prune on the hub removes it", Run: func(ctx context.Context) error {
					res := e.Tether(ctx, "app", "sync", "scn-prune-off", "--prune", "-n", spoke, "--context", "tether-hub")
					if res.ExitCode != 0 {
						return fmt.Errorf("tether app sync scn-prune-off --prune -n %s --context tether-hub: exit %d: %s", spoke, res.ExitCode, lastLines(res.Stderr, 3))
					}
					return eventually(ctx, time.Minute, "scn-prune-off pruned and Synced", func(ctx context.Context) error {
						if err := cmGone(ctx, "scn-prune-off"); err != nil {
							return err
						}
						return syncedAt(ctx, e, spoke, "scn-prune-off", sha)
					})
				}},
			}
		},
	}
}

func badManifest() Scenario {
	const folder = "scenarios/bad-manifest"
	return Scenario{
		Name:        "bad-manifest",
		Description: "broken YAML fails the sync naming file and line, applies nothing of the commit, and recovers when fixed",
		Labels:      []string{LabelGitOps},
		Timeout:     3 * time.Minute,
		Steps: func(e *Env) []Step {
			spoke := e.Spokes()[0]
			var sha string
			value := func(ctx context.Context) (string, error) {
				cs, err := e.Kube(spoke)
				if err != nil {
					return "", err
				}
				cm, err := cs.CoreV1().ConfigMaps("scn-bad").Get(ctx, "scn-bad", metav1.GetOptions{})
				if err != nil {
					return "", fmt.Errorf("ConfigMap scn-bad/scn-bad on %s: %w", spoke, err)
				}
				return cm.Data["value"], nil
			}
			wantValue := func(want string) func(context.Context) error {
				return func(ctx context.Context) error {
					got, err := value(ctx)
					if err != nil {
						return err
					}
					if got != want {
						return fmt.Errorf("ConfigMap scn-bad/scn-bad on %s has value %q, want %q (agent log %s)", spoke, got, want, e.ComponentLog("agent-"+spoke))
					}
					return nil
				}
			}
			return []Step{
				{Name: "an Application on " + spoke + " with one ConfigMap, Synced", Run: func(ctx context.Context) error {
					if _, err := commitFiles(ctx, e, folder, map[string]string{"cm.yaml": configMapYAML("scn-bad", "v1")}); err != nil {
						return err
					}
					if err := createHubApp(ctx, e, spoke, "scn-bad", folder, "scn-bad", automated(true)); err != nil {
						return err
					}
					return eventually(ctx, 90*time.Second, "scn-bad Synced", func(ctx context.Context) error {
						return syncedAt(ctx, e, spoke, "scn-bad", "")
					})
				}},
				{Name: "push broken YAML beside a change to the ConfigMap", Run: func(ctx context.Context) (err error) {
					_, err = e.Commit(ctx, "bad-manifest: broken yaml",
						sample.WriteFile(folder+"/cm.yaml", []byte(configMapYAML("scn-bad", "v2"))),
						sample.WriteFile(folder+"/broken.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken: yes\n")))
					return err
				}},
				{Name: "the hub shows a ComparisonError naming " + folder + "/broken.yaml:4", Run: func(ctx context.Context) error {
					want := folder + "/broken.yaml:4:"
					return eventually(ctx, time.Minute, "a ComparisonError naming "+want, func(ctx context.Context) error {
						app, err := hubApp(ctx, e, spoke, "scn-bad")
						if err != nil {
							return err
						}
						for _, c := range app.Status.Conditions {
							if c.Type == v1alpha1.ConditionComparisonError && strings.Contains(c.Message, want) {
								return nil
							}
						}
						return fmt.Errorf("hub Application %s/scn-bad has conditions %+v; %s", spoke, app.Status.Conditions, lookHub(e, spoke, "scn-bad"))
					})
				}},
				{Name: "nothing of the broken commit is applied", Run: func(ctx context.Context) error {
					return holds(ctx, 3*time.Second, "the ConfigMap keeps v1", wantValue("v1"))
				}},
				{Name: "removing the broken file recovers: Synced, the change applied", Run: func(ctx context.Context) (err error) {
					if sha, err = e.Commit(ctx, "bad-manifest: fix", sample.RemoveFile(folder+"/broken.yaml")); err != nil {
						return err
					}
					return eventually(ctx, time.Minute, "scn-bad Synced at the fix", func(ctx context.Context) error {
						if err := syncedAt(ctx, e, spoke, "scn-bad", sha); err != nil {
							return err
						}
						return wantValue("v2")(ctx)
					})
				}},
			}
		},
	}
}
