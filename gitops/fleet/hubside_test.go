package fleet

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tether-dev/tether/cluster"
)

func TestSurveyFindsWhatTheHubHoldsPerSpoke(t *testing.T) {
	f := newFakeHub(t, []string{"spoke-1", "spoke-3"}, []string{"team"},
		map[string][]string{"spoke-1": {"sample"}, "team": {"a", "b"}}, []string{"spoke-1", "spoke-9"})
	seen, err := f.h.survey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !seen.Namespaces["spoke-1"] || !seen.Namespaces["spoke-3"] || seen.Namespaces["team"] || seen.Namespaces[cluster.SystemNamespace] {
		t.Errorf("namespaces tether made for spokes = %v; want spoke-1 and spoke-3 (not team, not %s)", seen.Namespaces, cluster.SystemNamespace)
	}
	if seen.Apps["spoke-1"] != 1 || seen.Apps["team"] != 2 {
		t.Errorf("Applications per namespace = %v", seen.Apps)
	}
	if !seen.Agents["spoke-1"] || !seen.Agents["spoke-9"] || len(seen.Agents) != 2 {
		t.Errorf("Agents = %v", seen.Agents)
	}
	if d := seen.describe("spoke-1"); !strings.Contains(d, "namespace spoke-1") || !strings.Contains(d, "1 Application,") || !strings.Contains(d, "Agent tether-system/spoke-1") {
		t.Errorf("describe(spoke-1) = %q", d)
	}
}

func TestForgetRemovesTheSpokesHubObjects(t *testing.T) {
	ctx := context.Background()
	f := newFakeHub(t, []string{"spoke-3"}, []string{"team"},
		map[string][]string{"spoke-3": {"sample"}, "team": {"a", "b"}, "spoke-1": {"sample"}}, []string{"spoke-1", "spoke-3", "team"})

	// The namespace tether made goes, with what is in it.
	if err := f.h.forget(ctx, "spoke-3"); err != nil {
		t.Fatal(err)
	}
	if f.namespace(t, "spoke-3") {
		t.Error("namespace spoke-3, made by tether, is still there")
	}
	if got := f.agents(t); !slices.Equal(got, []string{"spoke-1", "team"}) {
		t.Errorf("Agents after forgetting spoke-3 = %v", got)
	}

	// A namespace someone else made stays; only its Applications go.
	if err := f.h.forget(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if !f.namespace(t, "team") {
		t.Error("namespace team, not tether's, was deleted")
	}
	if got := f.apps(t, "team"); len(got) != 0 {
		t.Errorf("Applications left in team: %v", got)
	}
	if got := f.agents(t); !slices.Equal(got, []string{"spoke-1"}) {
		t.Errorf("Agents after forgetting team = %v", got)
	}
	if got := f.apps(t, "spoke-1"); !slices.Equal(got, []string{"sample"}) {
		t.Errorf("another spoke's Applications were touched: %v", got)
	}

	// Nothing left of it: nothing to do, no error.
	if err := f.h.forget(ctx, "spoke-3"); err != nil {
		t.Errorf("forgetting a spoke twice: %v", err)
	}
	// tether's own namespace is never a spoke's.
	if err := f.h.forget(ctx, cluster.SystemNamespace); err == nil || !f.namespace(t, cluster.SystemNamespace) {
		t.Errorf("forget(%s) = %v; want a refusal and the namespace kept", cluster.SystemNamespace, err)
	}
}

// A namespace that never finishes terminating is reported with what to
// look at, not waited on for ever.
func TestForgetSaysWhichNamespaceIsStuck(t *testing.T) {
	f := newFakeHub(t, []string{"spoke-3"}, nil, nil, nil)
	f.h.namespaceGone = 300 * time.Millisecond
	// The fake deletes at once; a Delete that does nothing stands in for
	// a namespace held by a finalizer.
	f.cs.PrependReactor("delete", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, nil })
	err := f.h.forget(context.Background(), "spoke-3")
	if err == nil || !strings.Contains(err.Error(), "spoke-3") || !strings.Contains(err.Error(), "still terminating") || !strings.Contains(err.Error(), "kubectl --context tether-hub") {
		t.Fatalf("forget of a stuck namespace = %v", err)
	}
}
