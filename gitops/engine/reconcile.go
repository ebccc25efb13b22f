package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/repo"
)

// reconcileStep is one named stage of a reconcile, in the manner of kind's
// create actions: the name says where a reconcile stopped when it fails.
type reconcileStep struct {
	name string
	run  func(e *Engine, ctx context.Context, r *reconcilePass) error
}

// reconcileSteps are the stages of one reconcile, in the order they run.
// A step ends the pass early by setting r.done; one that fails ends it
// with its error, after writing whatever status the failure calls for.
func reconcileSteps() []reconcileStep {
	return []reconcileStep{
		{"load application", (*Engine).loadApplication},
		{"skip delivered operation", (*Engine).skipDeliveredOperation},
		{"resolve revision", (*Engine).resolveRevision},
		{"compare with live state", (*Engine).compareLive},
		{"decide sync", (*Engine).decideSync},
		{"sync", (*Engine).syncPlan},
		{"write status", (*Engine).writeOutcome},
		{"clear operation", (*Engine).clearServedOperation},
		{"clear refresh", (*Engine).clearServedRefresh},
		{"schedule next look", (*Engine).scheduleNext},
	}
}

// reconcilePass is what one reconcile of one Application learns and
// decides, handed from step to step.
type reconcilePass struct {
	key string
	app *v1alpha1.Application
	// status is the status being built; it is written, not app.Status.
	status *v1alpha1.ApplicationStatus
	now    metav1.Time

	refreshValue string
	refreshAsked bool
	// fetch is whether this pass fetches from Git (forced, due, or asked).
	fetch bool
	op    *v1alpha1.Operation

	revision string // asked for: the source's, or the operation's
	sha      string // what revision resolved to
	plan     *plan

	doSync bool
	prune  bool

	next time.Duration
	done bool
}

// reconcile brings one Application a step closer to Git and reports what
// it saw. It returns when to look again.
func (e *Engine) reconcile(ctx context.Context, key string) (time.Duration, error) {
	r := &reconcilePass{key: key}
	for _, s := range reconcileSteps() {
		if err := s.run(e, ctx, r); err != nil {
			return 0, fmt.Errorf("%s: %w", s.name, err)
		}
		if r.done {
			break
		}
	}
	return r.next, nil
}

// loadApplication reads the Application from the informer's cache. One
// that is gone ends the pass, and the engine forgets its fetch schedule.
func (e *Engine) loadApplication(ctx context.Context, r *reconcilePass) error {
	if _, _, err := cache.SplitMetaNamespaceKey(r.key); err != nil {
		r.done = true
		return nil
	}
	obj, exists, err := e.appInf.GetStore().GetByKey(r.key)
	if err != nil {
		return err
	}
	if !exists {
		e.mu.Lock()
		delete(e.lastFetch, r.key)
		delete(e.forced, r.key)
		e.mu.Unlock()
		r.done = true
		return nil
	}
	r.app, err = v1alpha1.ApplicationFrom(obj.(*unstructured.Unstructured))
	if err != nil {
		return fmt.Errorf("decode Application %s: %w", r.key, err)
	}
	r.op = r.app.Operation
	r.refreshValue, r.refreshAsked = r.app.Annotations[v1alpha1.AnnotationRefresh]
	return nil
}

// skipDeliveredOperation ends the pass when the requested operation ran
// already: it was delivered twice (e.g. re-sent after a reconnect).
func (e *Engine) skipDeliveredOperation(ctx context.Context, r *reconcilePass) error {
	op, st := r.op, r.app.Status.OperationState
	if op != nil && op.ID != "" && st != nil && st.Operation.ID == op.ID && st.Phase != v1alpha1.OperationRunning {
		r.done = true
		return e.clearOperation(ctx, r.app)
	}
	return nil
}

// resolveRevision turns the revision asked for into a commit, fetching
// from Git when forced, due, or asked by the refresh annotation.
func (e *Engine) resolveRevision(ctx context.Context, r *reconcilePass) error {
	e.mu.Lock()
	forced := e.forced[r.key]
	due := time.Since(e.lastFetch[r.key]) >= e.opts.PollInterval
	e.mu.Unlock()
	r.fetch = forced || due || r.refreshAsked

	r.revision = r.app.Spec.Source.TargetRevision
	if r.op != nil && r.op.Sync != nil && r.op.Sync.Revision != "" {
		r.revision = r.op.Sync.Revision
	}
	r.status = r.app.Status.DeepCopy()
	r.now = metav1.Now()
	sha, err := e.repos.Resolve(ctx, r.app.Spec.Source.RepoURL, r.revision, r.fetch)
	if err != nil {
		return e.reportCompareError(ctx, r, err)
	}
	if r.fetch {
		e.mu.Lock()
		e.lastFetch[r.key] = time.Now()
		delete(e.forced, r.key)
		e.mu.Unlock()
	}
	r.sha = sha
	return nil
}

// compareLive renders the commit and compares it with the live objects
// held in the informers.
func (e *Engine) compareLive(ctx context.Context, r *reconcilePass) error {
	p, err := e.makePlan(ctx, r.app, r.sha, informerLookup{e})
	if err != nil {
		return e.reportCompareError(ctx, r, err)
	}
	r.plan = p
	clearCondition(r.status, v1alpha1.ConditionComparisonError)
	return nil
}

// reportCompareError handles a failed Git resolve or render: say so, keep
// the cluster as it is, and retry with backoff. A failed operation is
// reported, not retried forever. It returns err, joined with any error of
// its own.
func (e *Engine) reportCompareError(ctx context.Context, r *reconcilePass, err error) error {
	status, now, op, app := r.status, r.now, r.op, r.app
	setCondition(status, v1alpha1.ConditionComparisonError, err.Error(), now)
	status.Sync.Status = v1alpha1.SyncStatusUnknown
	if op != nil {
		status.OperationState = &v1alpha1.OperationState{Operation: *op, Phase: v1alpha1.OperationFailed, Message: err.Error(), StartedAt: now, FinishedAt: &now}
	}
	status.ReconciledAt = &now
	if uerr := e.writeStatus(ctx, app, status, true); uerr != nil {
		return errors.Join(err, uerr)
	}
	if op != nil {
		if cerr := e.clearOperation(ctx, app); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	if r.refreshAsked {
		// Answered too: the status just written says why the compare
		// failed, which is what whoever asked (on the hub, through the
		// agent) waits for. The retries keep fetching, as they would
		// have with the annotation left in place.
		e.mu.Lock()
		e.forced[r.key] = true
		e.mu.Unlock()
		if cerr := e.clearRefresh(ctx, app, r.refreshValue); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	return err
}

// decideSync settles whether this pass syncs, and with prune: a one-shot
// operation says so itself; an automated policy syncs when Git moved, or
// on any drift with self-heal.
func (e *Engine) decideSync(ctx context.Context, r *reconcilePass) error {
	app, op, p := r.app, r.op, r.plan
	automated := app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.Automated != nil
	lastSynced := ""
	if n := len(r.status.History); n > 0 {
		lastSynced = r.status.History[n-1].Revision
	}
	r.doSync = op != nil && op.Sync != nil
	r.prune = r.doSync && op.Sync.Prune
	if !r.doSync && automated && p.outOfSync {
		auto := app.Spec.SyncPolicy.Automated
		// Git moved, or self-heal is on: sync. Drift with self-heal off
		// is only reported, as in Argo CD.
		onlyPrunable := true
		for _, res := range p.resources {
			if res.Status == v1alpha1.SyncStatusOutOfSync && !res.RequiresPruning {
				onlyPrunable = false
			}
		}
		if r.sha != lastSynced || auto.SelfHeal {
			r.doSync = !(onlyPrunable && !auto.Prune)
		}
		r.prune = auto.Prune
	}
	return nil
}

// syncPlan applies the plan when decideSync said so, records the operation
// and history, and compares again so the status written is the outcome.
// An automated sync that failed writes its status and ends the pass with
// its error, to be retried with backoff.
func (e *Engine) syncPlan(ctx context.Context, r *reconcilePass) error {
	if !r.doSync {
		return nil
	}
	app, op, sha, status, now := r.app, r.op, r.sha, r.status, r.now
	initiated := "automated"
	var operation v1alpha1.Operation
	if op != nil {
		operation = *op
		initiated = op.InitiatedBy
	} else {
		operation = v1alpha1.Operation{InitiatedBy: "automated", Sync: &v1alpha1.SyncOperation{Revision: sha, Prune: r.prune}}
	}
	started := metav1.Now()
	e.log.Info("syncing", "app", r.key, "revision", repo.ShortSHA(sha), "reason", r.plan.drift)
	syncErr := e.sync(ctx, app, r.plan, r.prune)
	finished := metav1.Now()
	state := &v1alpha1.OperationState{Operation: operation, Phase: v1alpha1.OperationSucceeded, SyncRevision: sha, StartedAt: started, FinishedAt: &finished,
		Message: fmt.Sprintf("synced %d resources at %s", len(r.plan.targets), repo.ShortSHA(sha))}
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
		r.plan = p2
	}
	if syncErr != nil && op == nil {
		p := r.plan
		status.Sync = v1alpha1.SyncStatus{Status: syncStatus(p), Revision: sha}
		status.Resources, status.Health, status.ReconciledAt = p.resources, p.health, &now
		if uerr := e.writeStatus(ctx, app, status, true); uerr != nil {
			return errors.Join(syncErr, uerr)
		}
		return syncErr
	}
	return nil
}

// writeOutcome writes sync state, resources and health. Only a pass that
// fetched or synced stamps reconciledAt and writes an unchanged status.
func (e *Engine) writeOutcome(ctx context.Context, r *reconcilePass) error {
	status, p := r.status, r.plan
	status.Sync = v1alpha1.SyncStatus{Status: syncStatus(p), Revision: r.sha}
	status.Resources = p.resources
	status.Health = p.health
	if r.fetch || r.doSync {
		status.ReconciledAt = &r.now
	}
	return e.writeStatus(ctx, r.app, status, r.fetch || r.doSync)
}

// clearServedOperation removes the one-shot operation this pass ran.
func (e *Engine) clearServedOperation(ctx context.Context, r *reconcilePass) error {
	if r.op == nil {
		return nil
	}
	return e.clearOperation(ctx, r.app)
}

// clearServedRefresh removes the refresh annotation this pass answered.
func (e *Engine) clearServedRefresh(ctx context.Context, r *reconcilePass) error {
	if !r.refreshAsked {
		return nil
	}
	return e.clearRefresh(ctx, r.app, r.refreshValue)
}

// scheduleNext sets when to look again: at the next poll, or sooner when
// a Lease on a managed object's fields runs out first.
func (e *Engine) scheduleNext(ctx context.Context, r *reconcilePass) error {
	e.mu.Lock()
	next := e.opts.PollInterval - time.Since(e.lastFetch[r.key])
	e.mu.Unlock()
	if next < time.Second {
		next = e.pollDelay()
	}
	if lu := r.plan.leasedUntil; !lu.IsZero() {
		// Git's values return the moment the borrower stops renewing.
		if d := time.Until(lu) + 500*time.Millisecond; d < next {
			next = max(d, 100*time.Millisecond)
		}
	}
	r.next = next
	return nil
}
