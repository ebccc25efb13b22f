package catalog

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/sample"
	"github.com/tether-dev/tether/scenarios/harness"
)

// sampleReady is the first step of most fleet scenarios: they start from a
// fleet at rest.
func sampleReady(e *Env) Step {
	return Step{Name: "every spoke's sample is Synced and Healthy on the hub", Run: func(ctx context.Context) error {
		return eventually(ctx, 2*time.Minute, "sample Synced everywhere", func(ctx context.Context) error {
			return sampleSyncedAt(ctx, e, "")
		})
	}}
}

// converged waits until every spoke is Synced at sha with n replicas.
func converged(ctx context.Context, e *Env, sha string, n int, within time.Duration) error {
	return eventually(ctx, within, "every spoke Synced at "+short(sha)+" with "+strconv.Itoa(n)+" replicas", func(ctx context.Context) error {
		if err := sampleSyncedAt(ctx, e, sha); err != nil {
			return err
		}
		for _, s := range e.Spokes() {
			if err := wantReplicas(ctx, e, s, int32(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

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
								spoke, dash(app.Status.Sync.Status), short(app.Status.Sync.Revision), short(sha), lookHub(e, spoke, "scn-prune-off"))
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

func agentRestart() Scenario {
	return Scenario{
		Name:        "agent-restart",
		Description: "an agent SIGKILLed right after a commit and started again converges its spoke",
		Labels:      []string{LabelFleet, LabelChaos},
		Timeout:     4 * time.Minute,
		Steps: func(e *Env) []Step {
			spoke := e.Spokes()[0]
			var sha string
			var n int
			return []Step{
				sampleReady(e),
				{Name: "commit a new replica count", Run: func(ctx context.Context) (err error) {
					if n, err = nextReplicas(ctx, e); err != nil {
						return err
					}
					sha, err = scaleSample(ctx, e, n)
					return err
				}},
				{Name: killAgentStep(e, spoke), Run: func(ctx context.Context) error {
					if e.Kind() {
						return kindKillPods(ctx, e, "agent-"+spoke)
					}
					_, err := replaceComponent(ctx, e, "agent-"+spoke, true, nil)
					return err
				}},
				{Name: "every spoke converges at the commit", Run: func(ctx context.Context) error {
					return converged(ctx, e, sha, n, 90*time.Second)
				}},
			}
		},
	}
}

func principalRestart() Scenario {
	return Scenario{
		Name:        "principal-restart",
		Description: "a hub change made while the principal is down reaches the spoke once it restarts; commits converge after",
		Labels:      []string{LabelFleet, LabelChaos},
		Timeout:     5 * time.Minute,
		Steps: func(e *Env) []Step {
			spoke := e.Spokes()[1]
			var rec process.Record
			var replicas int32 // kind: the principal's Deployment's count
			var restarted time.Time
			stopName, startName := "SIGKILL the principal", "start the principal again with the same command line"
			if e.Kind() {
				stopName = "stop the principal: scale Deployment " + deploy.PrincipalName + " on the hub to 0 until its pods are gone"
				startName = "start the principal again: scale " + deploy.PrincipalName + " back to its replica count"
			}
			return []Step{
				sampleReady(e),
				{Name: stopName, Run: func(ctx context.Context) (err error) {
					if e.Kind() {
						replicas, err = kindStop(ctx, e, "principal")
						return err
					}
					if rec, err = component(e, "principal"); err != nil {
						return err
					}
					e.restoreComponents()
					e.Logf("SIGKILL principal (pid %d)", rec.PID)
					if err := syscallKill(rec.PID); err != nil {
						return fmt.Errorf("kill the principal (pid %d): %w", rec.PID, err)
					}
					return eventually(ctx, 15*time.Second, "principal gone", func(context.Context) error {
						if harness.ProcessGone(rec.PID) {
							return nil
						}
						return fmt.Errorf("pid %d still runs", rec.PID)
					})
				}},
				{Name: "change " + spoke + "'s sample Application on the hub while nobody carries it", Run: func(ctx context.Context) error {
					return setTargetRevision(ctx, e, spoke, "HEAD")
				}},
				{Name: startName, Run: func(ctx context.Context) error {
					restarted = time.Now()
					if e.Kind() {
						return kindStart(ctx, e, "principal", replicas)
					}
					_, err := startLike(e, rec, nil)
					return err
				}},
				{Name: "the change reaches " + spoke, Run: func(ctx context.Context) error {
					return eventually(ctx, 90*time.Second, "targetRevision HEAD on "+spoke, func(ctx context.Context) error {
						u, err := spokeApp(ctx, e, spoke, fleet.SampleApp)
						if err != nil {
							return err
						}
						r, _, _ := unstructured.NestedString(u.Object, "spec", "source", "targetRevision")
						if r != "HEAD" {
							return fmt.Errorf("Application tether-system/%s on %s has targetRevision %q, want HEAD (principal log %s, agent log %s)",
								fleet.SampleApp, spoke, r, e.ComponentLog("principal"), e.ComponentLog("agent-"+spoke))
						}
						return nil
					})
				}},
				{Name: "every agent reconnects to the new principal", Run: func(ctx context.Context) error {
					return eventually(ctx, 90*time.Second, "every agent reconnected", func(ctx context.Context) error {
						for _, s := range e.Spokes() {
							if err := agentConnectedSince(ctx, e, s, restarted); err != nil {
								return err
							}
						}
						return nil
					})
				}},
				{Name: "a new commit converges on every spoke", Run: func(ctx context.Context) error {
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
			}
		},
	}
}

// killAgentStep names agent-restart's kill: a SIGKILLed process
// (embedded), a pod deleted with grace period 0 (kind).
func killAgentStep(e *Env, spoke string) string {
	if e.Kind() {
		return "delete the agent pod of " + spoke + " with grace period 0; its Deployment starts a new one"
	}
	return "SIGKILL the agent of " + spoke + " and start it again"
}

// setTargetRevision patches a spoke's sample Application on the hub and
// registers putting the sample's branch back.
func setTargetRevision(ctx context.Context, e *Env, spoke, rev string) error {
	dyn, err := e.Dynamic(Hub)
	if err != nil {
		return err
	}
	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(spoke)
	patch := func(ctx context.Context, rev string) error {
		_, err := res.Patch(ctx, fleet.SampleApp, types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"source":{"targetRevision":%q}}}`, rev)), metav1.PatchOptions{})
		if err != nil {
			return fmt.Errorf("patch hub Application %s/%s: %w", spoke, fleet.SampleApp, err)
		}
		return nil
	}
	if err := patch(ctx, rev); err != nil {
		return err
	}
	e.Cleanup("put "+spoke+"'s sample back on "+sample.Branch, func(ctx context.Context) error { return patch(ctx, sample.Branch) })
	return nil
}

// startLike starts a copy of a supervised component with its recorded
// command line, output in the scenario's folder; a cleanup stops it.
func startLike(e *Env, rec process.Record, edit func([]string) []string) (*harness.Process, error) {
	args := append([]string(nil), rec.Args[1:]...)
	if edit != nil {
		args = edit(args)
	}
	bin := rec.Args[0]
	if _, err := os.Stat(bin); err != nil {
		// The binary that ran up is gone (a `go run` build): this one is
		// the same command.
		bin = e.wb.Bin
	}
	logPath := e.Dir() + "/" + rec.Name + ".log"
	p, err := harness.Start(rec.Name, bin, logPath, nil, args...)
	if err != nil {
		return nil, err
	}
	e.NoteLog(logPath)
	e.Logf("started a replacement %s: log %s", rec.Name, logPath)
	e.Cleanup("stop the replacement "+rec.Name, func(context.Context) error {
		p.Stop()
		return nil
	})
	return p, nil
}

func networkPartition() Scenario {
	return Scenario{
		Name:        "network-partition",
		Description: "with one agent cut off from the principal for 20 s, the other spoke converges at once and the cut one after",
		Labels:      []string{LabelFleet, LabelChaos},
		Timeout:     5 * time.Minute,
		Steps: func(e *Env) []Step {
			cut, other := e.Spokes()[0], e.Spokes()[1]
			var ln link
			var sha string
			var n int
			var before int32
			return []Step{
				sampleReady(e),
				{Name: partitionStep(e, cut), Run: func(ctx context.Context) (err error) {
					ln, err = partition(ctx, e, cut)
					return err
				}},
				{Name: "cut the connection and commit a new replica count", Run: func(ctx context.Context) (err error) {
					if before, err = sampleReplicas(ctx, e, cut); err != nil {
						return err
					}
					if err := ln.Cut(ctx); err != nil {
						return err
					}
					if n, err = nextReplicas(ctx, e); err != nil {
						return err
					}
					sha, err = scaleSample(ctx, e, n)
					return err
				}},
				{Name: other + " converges; " + cut + " keeps the old state for 20 s", Run: func(ctx context.Context) error {
					if err := eventually(ctx, time.Minute, other+" converged", func(ctx context.Context) error {
						return wantReplicas(ctx, e, other, int32(n))
					}); err != nil {
						return err
					}
					return holds(ctx, 20*time.Second, cut+" unchanged while cut off", func(ctx context.Context) error {
						return wantReplicas(ctx, e, cut, before)
					})
				}},
				{Name: "restore the connection; " + cut + " converges", Run: func(ctx context.Context) error {
					restored := time.Now()
					if err := ln.Restore(ctx); err != nil {
						return err
					}
					if err := eventually(ctx, 90*time.Second, cut+"'s agent reconnected", func(ctx context.Context) error {
						return agentConnectedSince(ctx, e, cut, restored)
					}); err != nil {
						return err
					}
					return converged(ctx, e, sha, n, 90*time.Second)
				}},
			}
		},
	}
}

func syncWhileDisconnected() Scenario {
	const folder = "scenarios/manual"
	return Scenario{
		Name:        "sync-while-disconnected",
		Description: "a sync requested on the hub while the agent is cut off runs exactly once when it reconnects",
		Labels:      []string{LabelFleet, LabelChaos},
		Timeout:     5 * time.Minute,
		Steps: func(e *Env) []Step {
			spoke := e.Spokes()[1]
			var ln link
			id := "scenario-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			manual := func(ctx context.Context) (*v1alpha1.Application, error) { return hubApp(ctx, e, spoke, "scn-manual") }
			return []Step{
				{Name: "a manual Application for " + spoke + ", OutOfSync", Run: func(ctx context.Context) error {
					if _, err := commitFiles(ctx, e, folder, map[string]string{"cm.yaml": configMapYAML("scn-manual", "v1")}); err != nil {
						return err
					}
					policy := &v1alpha1.SyncPolicy{SyncOptions: []string{v1alpha1.SyncOptionCreateNamespace}}
					if err := createHubApp(ctx, e, spoke, "scn-manual", folder, "scn-manual", policy); err != nil {
						return err
					}
					return eventually(ctx, time.Minute, "scn-manual OutOfSync", func(ctx context.Context) error {
						app, err := manual(ctx)
						if err != nil {
							return err
						}
						if app.Status.Sync.Status != v1alpha1.SyncStatusOutOfSync {
							return fmt.Errorf("hub Application %s/scn-manual is %q, want OutOfSync; %s", spoke, app.Status.Sync.Status, lookHub(e, spoke, "scn-manual"))
						}
						return nil
					})
				}},
				{Name: "cut " + spoke + "'s agent off the principal", Run: func(ctx context.Context) (err error) {
					if ln, err = partition(ctx, e, spoke); err != nil {
						return err
					}
					return ln.Cut(ctx)
				}},
				{Name: "request a sync on the hub; nothing runs while cut off", Run: func(ctx context.Context) error {
					dyn, err := e.Dynamic(Hub)
					if err != nil {
						return err
					}
					patch := fmt.Sprintf(`{"operation":{"id":%q,"initiatedBy":"scenario","sync":{}}}`, id)
					if _, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(spoke).Patch(ctx, "scn-manual", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
						return fmt.Errorf("request a sync of hub Application %s/scn-manual: %w", spoke, err)
					}
					return holds(ctx, 3*time.Second, "no operation ran", func(ctx context.Context) error {
						app, err := manual(ctx)
						if err != nil {
							return err
						}
						if app.Status.OperationState != nil {
							return fmt.Errorf("hub Application %s/scn-manual shows operation %s while its agent is cut off", spoke, app.Status.OperationState.Operation.ID)
						}
						return nil
					})
				}},
				{Name: "reconnect: the sync runs, the hub shows it Succeeded and clears the request", Run: func(ctx context.Context) error {
					if err := ln.Restore(ctx); err != nil {
						return err
					}
					return eventually(ctx, 90*time.Second, "operation "+id+" Succeeded", func(ctx context.Context) error {
						app, err := manual(ctx)
						if err != nil {
							return err
						}
						op := app.Status.OperationState
						switch {
						case op == nil || op.Operation.ID != id:
							return fmt.Errorf("hub Application %s/scn-manual has no result for operation %s yet; %s", spoke, id, lookHub(e, spoke, "scn-manual"))
						case op.Phase != v1alpha1.OperationSucceeded:
							return fmt.Errorf("operation %s is %s: %s", id, op.Phase, op.Message)
						case app.Operation != nil:
							return fmt.Errorf("hub Application %s/scn-manual still carries the request %s", spoke, app.Operation.ID)
						case app.Status.Sync.Status != v1alpha1.SyncStatusSynced:
							return fmt.Errorf("hub Application %s/scn-manual is %s after the sync", spoke, app.Status.Sync.Status)
						}
						return nil
					})
				}},
				{Name: "a reconnect storm does not run it again", Run: func(ctx context.Context) error {
					// A new stream after the cut: the storm has happened,
					// not merely been asked for, when the hold starts.
					prev, err := agentStream(ctx, e, spoke)
					if err != nil {
						return err
					}
					if err := ln.Cut(ctx); err != nil {
						return err
					}
					if err := ln.Restore(ctx); err != nil {
						return err
					}
					if err := eventually(ctx, 90*time.Second, spoke+"'s agent reconnected", func(ctx context.Context) error {
						cur, err := agentStream(ctx, e, spoke)
						if err != nil {
							return err
						}
						if cur == prev {
							return fmt.Errorf("hub Agent %s/%s still shows the stream from before the cut (%s; agent log %s)", cluster.SystemNamespace, spoke, cur, e.ComponentLog("agent-"+spoke))
						}
						return nil
					}); err != nil {
						return err
					}
					return holds(ctx, 5*time.Second, "one sync in the history", func(ctx context.Context) error {
						app, err := manual(ctx)
						if err != nil {
							return err
						}
						if n := len(app.Status.History); n != 1 {
							return fmt.Errorf("hub Application %s/scn-manual has %d syncs in its history, want 1", spoke, n)
						}
						return nil
					})
				}},
			}
		},
	}
}

// readFile is os.ReadFile as a string, "" when unreadable.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}
