package agent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

const ns = "tether-system"

func spokeCopy(name string) *unstructured.Unstructured {
	a := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{LabelManagedBy: "principal"}},
		Spec:       v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: "http://git/sample.git"}, Destination: v1alpha1.Destination{Namespace: "sample"}},
	}
	u, err := a.Unstructured()
	if err != nil {
		panic(err)
	}
	return u
}

func testAgent(t *testing.T, objs ...runtime.Object) (*Agent, dynamic.Interface) {
	t.Helper()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.ApplicationsResource: "ApplicationList"}, objs...)
	a, err := newAgent(Options{Name: "spoke-1", Namespace: ns, Logger: slog.New(slog.DiscardHandler)}, dyn, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), a.apps.HasSynced) {
		t.Fatal("informer did not sync")
	}
	return a, dyn
}

// engineServes does what the spoke's engine does with a refresh
// annotation: write the status of a fresh compare, then remove it.
func engineServes(t *testing.T, dyn dynamic.Interface, name string, at metav1.Time) {
	t.Helper()
	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns)
	ctx := context.Background()
	u, err := res.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app, _ := v1alpha1.ApplicationFrom(u)
	app.Status.ReconciledAt = &at
	nu, _ := app.Unstructured()
	if u, err = res.UpdateStatus(ctx, nu, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ann := u.GetAnnotations()
	delete(ann, v1alpha1.AnnotationRefresh)
	u.SetAnnotations(ann)
	if _, err := res.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// statusesUp drains the outbox and returns the statuses going up.
func statusesUp(a *Agent) []*protocol.StatusUpdate {
	var out []*protocol.StatusUpdate
	c := a.out.Open()
	for {
		m, ok := c.Next()
		if !ok {
			return out
		}
		c.Ack(m.Seq)
		if m.Status != nil {
			out = append(out, m.Status)
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting: " + what)
		}
	}
}

func TestHubRefreshIsRelayedToTheEngineAndAnsweredWithTheStatus(t *testing.T) {
	a, dyn := testAgent(t, spokeCopy("sample"))
	ctx := context.Background()
	if err := a.handle(ctx, &protocol.Message{AppRefresh: &protocol.AppRefreshRequest{App: "sample", ID: "r1"}}); err != nil {
		t.Fatal(err)
	}
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).Get(ctx, "sample", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := u.GetAnnotations()[v1alpha1.AnnotationRefresh]; v != "r1" {
		t.Fatalf("the spoke copy's refresh annotation = %q, want the hub's r1", v)
	}
	eventually(t, "the annotation's event", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.refreshing["sample"] != nil && a.refreshing["sample"].seen
	})
	for _, s := range statusesUp(a) {
		if s.Refreshed != "" {
			t.Fatalf("a status claims refresh %q before the engine served it", s.Refreshed)
		}
	}

	at := metav1.NewTime(time.Now().Truncate(time.Second))
	engineServes(t, dyn, "sample", at)
	var answer *protocol.StatusUpdate
	eventually(t, "a status answering r1", func() bool {
		for _, s := range statusesUp(a) {
			if s.Refreshed == "r1" {
				answer = s
			}
		}
		return answer != nil
	})
	if answer.Status.ReconciledAt == nil || !answer.Status.ReconciledAt.Equal(&at) {
		t.Errorf("the answer carries status %+v, want the refresh's compare", answer.Status)
	}

	// Asked again with the same ID (the hub's annotation outlived a
	// stream): statuses stop claiming it until it is served again.
	if err := a.handle(ctx, &protocol.Message{AppRefresh: &protocol.AppRefreshRequest{App: "sample", ID: "r1"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second request seen", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.refreshing["sample"] != nil && a.refreshing["sample"].seen
	})
	a.queueStatus(mustGet(t, dyn, "sample"))
	for _, s := range statusesUp(a) {
		if s.Refreshed != "" {
			t.Errorf("status claims %q while the same request runs again", s.Refreshed)
		}
	}
}

// Events older than the agent's own patch can arrive after it: an absent
// annotation only answers the request once the request was seen.
func TestStaleEventDoesNotAnswerARefresh(t *testing.T) {
	a, _ := testAgent(t)
	a.refreshing["sample"] = &hubRefresh{id: "r1"}
	if a.noteRefresh(spokeCopy("sample")) {
		t.Fatal("an event without the annotation, before it was seen, answered the request")
	}
	with := spokeCopy("sample")
	with.SetAnnotations(map[string]string{v1alpha1.AnnotationRefresh: "local"})
	if a.noteRefresh(with) {
		t.Fatal("another request's annotation answered r1")
	}
	with.SetAnnotations(map[string]string{v1alpha1.AnnotationRefresh: "r1"})
	if a.noteRefresh(with) || !a.refreshing["sample"].seen {
		t.Fatal("the request's annotation was not noted as seen")
	}
	if !a.noteRefresh(spokeCopy("sample")) || a.refreshed["sample"] != "r1" {
		t.Fatal("the annotation's removal after it was seen did not answer r1")
	}
}

func TestRefreshForAnApplicationTheSpokeLacksIsDropped(t *testing.T) {
	a, _ := testAgent(t)
	if err := a.handle(context.Background(), &protocol.Message{AppRefresh: &protocol.AppRefreshRequest{App: "gone", ID: "r1"}}); err != nil {
		t.Fatalf("refresh of a missing Application: %v, want it acknowledged and dropped", err)
	}
	if a.refreshing["gone"] != nil {
		t.Error("a dropped refresh is still waited for")
	}
}

func mustGet(t *testing.T, dyn dynamic.Interface, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// An operation for an Application the spoke lacks is answered as failed,
// with the reason, not dropped: the hub would show it pending for ever.
func TestOperationForAMissingApplicationIsReportedFailed(t *testing.T) {
	a, _ := testAgent(t)
	op := &protocol.OperationRequest{App: "gone", Operation: v1alpha1.Operation{ID: "op1"}}
	if err := a.handle(context.Background(), &protocol.Message{Operation: op}); err != nil {
		t.Fatalf("operation on a missing Application: %v, want it acknowledged and answered", err)
	}
	var answer *protocol.StatusUpdate
	for _, s := range statusesUp(a) {
		if s.Name == "gone" {
			answer = s
		}
	}
	if answer == nil || answer.Status == nil || answer.Status.OperationState == nil {
		t.Fatalf("no operation result goes up for the missing Application: %+v", answer)
	}
	st := answer.Status.OperationState
	if st.Operation.ID != "op1" || st.Phase != v1alpha1.OperationFailed || st.Message == "" || st.FinishedAt == nil {
		t.Errorf("operation result = %+v, want op1 Failed, finished, with the reason", st)
	}
	// A status of the Application queued after the answer (its copy was
	// restored) must not replace it before it goes.
	a.out.PutIntent(protocol.Message{Operation: op})
	a.queueStatus(spokeCopy("gone"))
	a.failOperation(op, "again")
	a.queueStatus(spokeCopy("gone"))
	failed := 0
	for _, s := range statusesUp(a) {
		if s.Status != nil && s.Status.OperationState != nil && s.Status.OperationState.Phase == v1alpha1.OperationFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed operation results went up, want the one queued before a newer status", failed)
	}
}
