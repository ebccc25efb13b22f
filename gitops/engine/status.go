package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// historyLimit bounds status.history.
const historyLimit = 10

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
