package engine

import (
	"context"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// Diff actions.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionPrune  = "prune"
	// ActionKeep: left Git, but prune is off, so a sync keeps it.
	ActionKeep = "keep (prune off)"
)

// ResourceDiff is what a sync would do to one resource.
type ResourceDiff struct {
	Resource string
	Action   string
	// Unified is a unified diff of the fields Git sets, live → Git.
	Unified string
}

// Diff fetches Git and reports what a sync of app would change, reading
// the live state from the API. It changes nothing.
func (e *Engine) Diff(ctx context.Context, app *v1alpha1.Application, prune bool) (string, []ResourceDiff, error) {
	sha, err := e.repos.Resolve(ctx, app.Spec.Source.RepoURL, app.Spec.Source.TargetRevision, true)
	if err != nil {
		return "", nil, err
	}
	p, err := e.makePlan(ctx, app, sha, apiLookup{e.dyn})
	if err != nil {
		return sha, nil, err
	}
	var out []ResourceDiff
	for _, t := range p.targets {
		if ok, _ := inSync(t.obj, t.live); ok {
			continue
		}
		d := ResourceDiff{Resource: t.id(), Action: ActionUpdate}
		if t.live == nil {
			d.Action = ActionCreate
		}
		d.Unified = unified(t.id(), project(t.live, t.obj), t.obj)
		out = append(out, d)
	}
	for _, u := range p.extras {
		d := ResourceDiff{Resource: objectKey(u), Action: ActionKeep}
		if prune {
			d.Action = ActionPrune
		}
		out = append(out, d)
	}
	return sha, out, nil
}

// project keeps the parts of live that desired sets, so the diff shows
// changes rather than every server default.
func project(live, desired *unstructured.Unstructured) *unstructured.Unstructured {
	if live == nil {
		return nil
	}
	return &unstructured.Unstructured{Object: projectMap(live.Object, desired.Object)}
}

func projectMap(live, desired map[string]any) map[string]any {
	out := map[string]any{}
	for k, dv := range desired {
		lv, ok := live[k]
		if !ok || k == "status" {
			continue
		}
		out[k] = projectValue(lv, dv)
	}
	return out
}

func projectValue(lv, dv any) any {
	switch d := dv.(type) {
	case map[string]any:
		if l, ok := lv.(map[string]any); ok {
			return projectMap(l, d)
		}
	case []any:
		if l, ok := lv.([]any); ok {
			out := make([]any, len(l))
			for i := range l {
				if i < len(d) {
					out[i] = projectValue(l[i], d[i])
				} else {
					out[i] = l[i]
				}
			}
			return out
		}
	}
	return lv
}

func unified(name string, live, desired *unstructured.Unstructured) string {
	var a string
	if live != nil {
		b, _ := yaml.Marshal(live.Object)
		a = string(b)
	}
	clean := desired.DeepCopy()
	delete(clean.Object, "status")
	b, _ := yaml.Marshal(clean.Object)
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(string(b)),
		FromFile: "live/" + name, ToFile: "git/" + name, Context: 3,
	})
	if err != nil {
		return fmt.Sprintf("(diff failed: %v)", err)
	}
	return text
}
