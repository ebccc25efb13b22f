package catalog

import (
	"context"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/sample"
)

func agentRestart() Scenario {
	return Scenario{
		Name:        "agent-restart",
		Description: "an agent SIGKILLed right after a commit comes back by itself (its supervisor, or its Deployment) and converges its spoke",
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
					_, err := crashComponent(ctx, e, "agent-"+spoke)
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
			stopName, startName := "SIGKILL the principal and its supervisor", "start the principal again with the same command line"
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
					// With its supervisor: the principal must stay down
					// until this scenario starts it again.
					return stopSupervised(ctx, e, rec, true)
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

// killAgentStep names agent-restart's kill: a SIGKILLed process whose
// supervisor starts it again (embedded), a pod deleted with grace period
// 0 (kind).
func killAgentStep(e *Env, spoke string) string {
	if e.Kind() {
		return "delete the agent pod of " + spoke + " with grace period 0; its Deployment starts a new one"
	}
	return "SIGKILL the agent of " + spoke + "; its supervisor starts it again"
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
