package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/repo"
)

// historyLimit bounds status.history.
const historyLimit = 10

// reconcile brings one Application a step closer to Git and reports what
// it saw. It returns when to look again.
func (e *Engine) reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	obj, exists, err := e.appInf.GetStore().GetByKey(key)
	if err != nil {
		return 0, err
	}
	if !exists {
		e.mu.Lock()
		delete(e.lastFetch, key)
		delete(e.forced, key)
		e.mu.Unlock()
		return 0, nil
	}
	app, err := v1alpha1.ApplicationFrom(obj.(*unstructured.Unstructured))
	if err != nil {
		return 0, fmt.Errorf("decode Application %s: %w", key, err)
	}
	_ = ns
	_ = name

	e.mu.Lock()
	forced := e.forced[key]
	due := time.Since(e.lastFetch[key]) >= e.opts.PollInterval
	e.mu.Unlock()
	refreshValue, refreshAsked := app.Annotations[v1alpha1.AnnotationRefresh]
	fetch := forced || due || refreshAsked

	op := app.Operation
	if op != nil && op.ID != "" && app.Status.OperationState != nil && app.Status.OperationState.Operation.ID == op.ID &&
		app.Status.OperationState.Phase != v1alpha1.OperationRunning {
		// Delivered twice (e.g. re-sent after a reconnect): it ran already.
		return 0, e.clearOperation(ctx, app)
	}
	revision := app.Spec.Source.TargetRevision
	if op != nil && op.Sync != nil && op.Sync.Revision != "" {
		revision = op.Sync.Revision
	}

	status := app.Status.DeepCopy()
	now := metav1.Now()
	sha, err := e.repos.Resolve(ctx, app.Spec.Source.RepoURL, revision, fetch)
	if fetch && err == nil {
		e.mu.Lock()
		e.lastFetch[key] = time.Now()
		delete(e.forced, key)
		e.mu.Unlock()
	}
	var p *plan
	if err == nil {
		p, err = e.makePlan(ctx, app, sha, informerLookup{e})
	}
	if err != nil {
		// Git or rendering failed: say so, keep the cluster as it is, and
		// retry with backoff. A failed operation is reported, not retried
		// forever.
		setCondition(status, v1alpha1.ConditionComparisonError, err.Error(), now)
		status.Sync.Status = v1alpha1.SyncStatusUnknown
		if op != nil {
			status.OperationState = &v1alpha1.OperationState{Operation: *op, Phase: v1alpha1.OperationFailed, Message: err.Error(), StartedAt: now, FinishedAt: &now}
		}
		status.ReconciledAt = &now
		if uerr := e.writeStatus(ctx, app, status, true); uerr != nil {
			return 0, errors.Join(err, uerr)
		}
		if op != nil {
			if cerr := e.clearOperation(ctx, app); cerr != nil {
				return 0, errors.Join(err, cerr)
			}
		}
		if refreshAsked {
			// Answered too: the status just written says why the compare
			// failed, which is what whoever asked (on the hub, through the
			// agent) waits for. The retries keep fetching, as they would
			// have with the annotation left in place.
			e.mu.Lock()
			e.forced[key] = true
			e.mu.Unlock()
			if cerr := e.clearRefresh(ctx, app, refreshValue); cerr != nil {
				return 0, errors.Join(err, cerr)
			}
		}
		return 0, err
	}
	clearCondition(status, v1alpha1.ConditionComparisonError)

	automated := app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.Automated != nil
	lastSynced := ""
	if n := len(status.History); n > 0 {
		lastSynced = status.History[n-1].Revision
	}
	doSync := op != nil && op.Sync != nil
	prune := doSync && op.Sync.Prune
	if !doSync && automated && p.outOfSync {
		auto := app.Spec.SyncPolicy.Automated
		// Git moved, or self-heal is on: sync. Drift with self-heal off
		// is only reported, as in Argo CD.
		onlyPrunable := true
		for _, r := range p.resources {
			if r.Status == v1alpha1.SyncStatusOutOfSync && !r.RequiresPruning {
				onlyPrunable = false
			}
		}
		if sha != lastSynced || auto.SelfHeal {
			doSync = !(onlyPrunable && !auto.Prune)
		}
		prune = auto.Prune
	}
	if doSync {
		initiated := "automated"
		var operation v1alpha1.Operation
		if op != nil {
			operation = *op
			initiated = op.InitiatedBy
		} else {
			operation = v1alpha1.Operation{InitiatedBy: "automated", Sync: &v1alpha1.SyncOperation{Revision: sha, Prune: prune}}
		}
		started := metav1.Now()
		e.log.Info("syncing", "app", key, "revision", repo.ShortSHA(sha), "reason", p.drift)
		syncErr := e.sync(ctx, app, p, prune)
		finished := metav1.Now()
		state := &v1alpha1.OperationState{Operation: operation, Phase: v1alpha1.OperationSucceeded, SyncRevision: sha, StartedAt: started, FinishedAt: &finished,
			Message: fmt.Sprintf("synced %d resources at %s", len(p.targets), repo.ShortSHA(sha))}
		if syncErr != nil {
			state.Phase, state.Message = v1alpha1.OperationFailed, syncErr.Error()
			setCondition(status, v1alpha1.ConditionSyncError, syncErr.Error(), now)
		} else {
			clearCondition(status, v1alpha1.ConditionSyncError)
			status.History = appendHistory(status.History, sha, initiated, finished)
		}
		status.OperationState = state
		// Compare again against what the API server now holds, so the
		// status written below is the outcome, not the plan.
		if p2, err := e.makePlan(ctx, app, sha, apiLookup{e.dyn}); err == nil {
			p = p2
		}
		if syncErr != nil && op == nil {
			// An automated sync that failed is retried with backoff.
			status.Sync = v1alpha1.SyncStatus{Status: syncStatus(p), Revision: sha}
			status.Resources, status.Health, status.ReconciledAt = p.resources, p.health, &now
			if uerr := e.writeStatus(ctx, app, status, true); uerr != nil {
				return 0, errors.Join(syncErr, uerr)
			}
			return 0, syncErr
		}
	}
	status.Sync = v1alpha1.SyncStatus{Status: syncStatus(p), Revision: sha}
	status.Resources = p.resources
	status.Health = p.health
	if fetch || doSync {
		status.ReconciledAt = &now
	}
	if err := e.writeStatus(ctx, app, status, fetch || doSync); err != nil {
		return 0, err
	}
	if op != nil {
		if err := e.clearOperation(ctx, app); err != nil {
			return 0, err
		}
	}
	if refreshAsked {
		if err := e.clearRefresh(ctx, app, refreshValue); err != nil {
			return 0, err
		}
	}
	e.mu.Lock()
	next := e.opts.PollInterval - time.Since(e.lastFetch[key])
	e.mu.Unlock()
	if next < time.Second {
		next = e.pollDelay()
	}
	if !p.leasedUntil.IsZero() {
		// Git's values return the moment the borrower stops renewing.
		if d := time.Until(p.leasedUntil) + 500*time.Millisecond; d < next {
			next = max(d, 100*time.Millisecond)
		}
	}
	return next, nil
}

func syncStatus(p *plan) string {
	if p.outOfSync {
		return v1alpha1.SyncStatusOutOfSync
	}
	return v1alpha1.SyncStatusSynced
}

func appendHistory(h []v1alpha1.RevisionHistory, sha, by string, at metav1.Time) []v1alpha1.RevisionHistory {
	var id int64 = 1
	if n := len(h); n > 0 {
		id = h[n-1].ID + 1
	}
	h = append(h, v1alpha1.RevisionHistory{ID: id, Revision: sha, DeployedAt: at, InitiatedBy: by})
	if len(h) > historyLimit {
		h = h[len(h)-historyLimit:]
	}
	return h
}

func setCondition(s *v1alpha1.ApplicationStatus, typ, msg string, now metav1.Time) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			if s.Conditions[i].Message != msg {
				s.Conditions[i].Message = msg
				s.Conditions[i].LastTransitionTime = &now
			}
			return
		}
	}
	s.Conditions = append(s.Conditions, v1alpha1.ApplicationCondition{Type: typ, Message: msg, LastTransitionTime: &now})
}

func clearCondition(s *v1alpha1.ApplicationStatus, typ string) {
	out := s.Conditions[:0]
	for _, c := range s.Conditions {
		if c.Type != typ {
			out = append(out, c)
		}
	}
	s.Conditions = out
	if len(s.Conditions) == 0 {
		s.Conditions = nil
	}
}

// writeStatus updates the status subresource when it changed. Without
// force, a status differing only in reconciledAt is not written: that keeps
// quiet Applications from writing every time a managed object ticks.
func (e *Engine) writeStatus(ctx context.Context, app *v1alpha1.Application, status *v1alpha1.ApplicationStatus, force bool) error {
	old := app.Status.DeepCopy()
	cmp := status.DeepCopy()
	old.ReconciledAt, cmp.ReconciledAt = nil, nil
	if !force && reflect.DeepEqual(old, cmp) {
		return nil
	}
	updated := app.DeepCopy()
	updated.Status = *status
	u, err := updated.Unstructured()
	if err != nil {
		return err
	}
	_, err = e.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(app.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// The Application changed meanwhile; its informer event brings
		// us back with the new version.
		return fmt.Errorf("status of %s/%s: %w", app.Namespace, app.Name, err)
	}
	return err
}

// clearOperation removes a finished one-shot request. The patch is guarded
// by the operation's ID, so a newer request that arrived meanwhile stays.
func (e *Engine) clearOperation(ctx context.Context, app *v1alpha1.Application) error {
	if app.Operation == nil {
		return nil
	}
	patch := []byte(`{"operation":null}`)
	if app.Operation.ID != "" {
		test, _ := json.Marshal(app.Operation.ID)
		patch = []byte(fmt.Sprintf(`[{"op":"test","path":"/operation/id","value":%s},{"op":"remove","path":"/operation"}]`, test))
		_, err := e.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(app.Namespace).Patch(ctx, app.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) && !isTestFailed(err) {
			return fmt.Errorf("clear operation: %w", err)
		}
		return nil
	}
	_, err := e.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(app.Namespace).Patch(ctx, app.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("clear operation: %w", err)
	}
	return nil
}

// clearRefresh removes the refresh annotation this reconcile served. The
// patch is guarded by its value: a request made while Git was being
// fetched (another value; the agent relays the hub's this way) stays, and
// its own informer event brings the Application back for a fetch of its
// own, so its answer never predates it.
func (e *Engine) clearRefresh(ctx context.Context, app *v1alpha1.Application, value string) error {
	v, _ := json.Marshal(value)
	path := "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(v1alpha1.AnnotationRefresh)
	patch := []byte(fmt.Sprintf(`[{"op":"test","path":%q,"value":%s},{"op":"remove","path":%q}]`, path, v, path))
	_, err := e.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(app.Namespace).Patch(ctx, app.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) && !isTestFailed(err) {
		return fmt.Errorf("clear refresh annotation: %w", err)
	}
	return nil
}

func isTestFailed(err error) bool {
	var se apierrors.APIStatus
	return errors.As(err, &se) && se.Status().Code == 422
}
