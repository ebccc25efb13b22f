package principal

import (
	"context"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

func hubApp(ns, name, refresh string) *unstructured.Unstructured {
	a := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: "http://git/sample.git"}, Destination: v1alpha1.Destination{Namespace: "sample"}},
	}
	if refresh != "" {
		a.Annotations = map[string]string{v1alpha1.AnnotationRefresh: refresh}
	}
	u, err := a.Unstructured()
	if err != nil {
		panic(err)
	}
	return u
}

// testPrincipal is a principal on a fake hub holding objs, its informer
// synced; nothing listens.
func testPrincipal(t *testing.T, objs ...runtime.Object) (*Principal, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.ApplicationsResource: "ApplicationList"}, objs...)
	p, err := newPrincipal(Options{Logger: slog.New(slog.DiscardHandler), Namespace: "tether-system"}, dyn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), p.apps.HasSynced) {
		t.Fatal("informer did not sync")
	}
	return p, dyn
}

// refreshes drains the agent's outbox and returns the refresh IDs queued.
func refreshes(p *Principal, agent string) []string {
	var out []string
	o := p.outbox(agent).Open()
	for {
		m, ok := o.Next()
		if !ok {
			break
		}
		o.Ack(m.Seq)
		if m.AppRefresh != nil {
			out = append(out, m.AppRefresh.App+"="+m.AppRefresh.ID)
		}
	}
	return out
}

func TestRefreshOnTheHubGoesDownOncePerValue(t *testing.T) {
	p, _ := testPrincipal(t, hubApp("spoke-1", "sample", "r1"), hubApp("spoke-1", "quiet", ""))
	// The informer's handlers run after it has synced.
	var got []string
	for deadline := time.Now().Add(5 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got = refreshes(p, "spoke-1")
	}
	if len(got) != 1 || got[0] != "sample=r1" {
		t.Fatalf("queued after the informer's first list: %v, want sample=r1 only", got)
	}
	// Status writes and resyncs of the same request send nothing more.
	p.appChanged(hubApp("spoke-1", "sample", "r1"), false)
	if got := refreshes(p, "spoke-1"); len(got) != 0 {
		t.Errorf("queued again for the same value: %v", got)
	}
	// A new stream re-queues it: the old one may have ended before the
	// agent acted.
	p.mu.Lock()
	delete(p.sentRefresh, "spoke-1")
	p.mu.Unlock()
	p.resync("spoke-1", protocol.Hello{Apps: map[string]string{"sample": protocol.SpecChecksum(&v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: "http://git/sample.git"}, Destination: v1alpha1.Destination{Namespace: "sample"}}), "quiet": "x"}})
	got = refreshes(p, "spoke-1")
	if len(got) != 1 || got[0] != "sample=r1" {
		t.Errorf("queued on resync: %v, want sample=r1", got)
	}
	// Served, then asked again with the same value (a script writing
	// "now"): that is a new request.
	p.appChanged(hubApp("spoke-1", "sample", ""), false)
	p.appChanged(hubApp("spoke-1", "sample", "r1"), false)
	if got := refreshes(p, "spoke-1"); len(got) != 1 {
		t.Errorf("the same value after the annotation went: %v, want it queued again", got)
	}
}

func TestAnsweredRefreshIsClearedOnTheHubAfterItsStatus(t *testing.T) {
	p, dyn := testPrincipal(t, hubApp("spoke-1", "sample", "r1"), hubApp("spoke-1", "newer", "r3"))
	ctx := context.Background()
	at := metav1.NewTime(time.Now().Truncate(time.Second))
	st := &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusSynced}, ReconciledAt: &at}

	if err := p.handle(ctx, "spoke-1", &protocol.Message{Status: &protocol.StatusUpdate{Name: "sample", Status: st, Refreshed: "r1"}}); err != nil {
		t.Fatal(err)
	}
	// An answer to an older request leaves the newer one for its own.
	if err := p.handle(ctx, "spoke-1", &protocol.Message{Status: &protocol.StatusUpdate{Name: "newer", Status: st, Refreshed: "r2"}}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.statusWriter(wctx)
	p.statusWake <- struct{}{}

	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace("spoke-1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, err := res.Get(ctx, "sample", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := v1alpha1.ApplicationFrom(u)
		_, pending := a.Annotations[v1alpha1.AnnotationRefresh]
		if !pending {
			if a.Status.ReconciledAt == nil || !a.Status.ReconciledAt.Equal(&at) {
				t.Errorf("annotation cleared, but the status is %+v: the answer must be written first", a.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub's refresh annotation is still %q after the answer", a.Annotations[v1alpha1.AnnotationRefresh])
		}
		time.Sleep(20 * time.Millisecond)
	}
	u, err := res.Get(ctx, "newer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := u.GetAnnotations()[v1alpha1.AnnotationRefresh]; v != "r3" {
		t.Errorf("the newer request's annotation = %q, want r3 kept", v)
	}
}

func TestRefreshClearPatchEscapesTheKey(t *testing.T) {
	got := string(refreshClearPatch(`a"b`))
	want := `[{"op":"test","path":"/metadata/annotations/gitops.tether.dev~1refresh","value":"a\"b"},{"op":"remove","path":"/metadata/annotations/gitops.tether.dev~1refresh"}]`
	if got != want {
		t.Errorf("refreshClearPatch = %s\nwant %s", got, want)
	}
}

// The spoke answers an operation for an Application it lacks as failed;
// the hub copy shows that, and why, and its operation is cleared, even
// when a status of the restored copy, without operationState, follows
// before or after the answer is written.
func TestFailedOperationFromTheSpokeShowsOnTheHub(t *testing.T) {
	withOp := hubApp("spoke-1", "sample", "")
	if err := unstructured.SetNestedMap(withOp.Object, map[string]any{"id": "op1"}, "operation"); err != nil {
		t.Fatal(err)
	}
	p, dyn := testPrincipal(t, withOp)
	ctx := context.Background()
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	failed := &v1alpha1.ApplicationStatus{OperationState: &v1alpha1.OperationState{
		Operation: v1alpha1.Operation{ID: "op1"}, Phase: v1alpha1.OperationFailed, Message: "the spoke has no Application", StartedAt: now, FinishedAt: &now,
	}}
	restored := &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusSynced}, ReconciledAt: &now}
	for _, st := range []*v1alpha1.ApplicationStatus{failed, restored} {
		if err := p.handle(ctx, "spoke-1", &protocol.Message{Status: &protocol.StatusUpdate{Name: "sample", Status: st}}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.statusWriter(wctx)
	p.statusWake <- struct{}{}

	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace("spoke-1")
	var app *v1alpha1.Application
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		u, err := res.Get(ctx, "sample", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		app, _ = v1alpha1.ApplicationFrom(u)
		if app.Operation == nil && app.Status.Sync.Status == v1alpha1.SyncStatusSynced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub copy: operation %+v, status %+v; want the operation cleared and the status written", app.Operation, app.Status)
		}
	}
	st := app.Status.OperationState
	if st == nil || st.Operation.ID != "op1" || st.Phase != v1alpha1.OperationFailed || st.Message == "" {
		t.Fatalf("hub copy's operationState = %+v, want op1 Failed with the reason", st)
	}
	// A later status of the restored copy keeps it too. writeStatus
	// starts from the informer's copy, which a real API server guards by
	// its resourceVersion and the fake does not: wait until the informer
	// has our write.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		obj, ok, _ := p.apps.GetStore().GetByKey("spoke-1/sample")
		if ok {
			if a, _ := v1alpha1.ApplicationFrom(obj.(*unstructured.Unstructured)); a.Status.OperationState != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer never saw the failed result")
		}
	}
	if err := p.handle(ctx, "spoke-1", &protocol.Message{Status: &protocol.StatusUpdate{Name: "sample", Status: restored}}); err != nil {
		t.Fatal(err)
	}
	p.statusWake <- struct{}{}
	time.Sleep(200 * time.Millisecond)
	u, err := res.Get(ctx, "sample", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if app, _ = v1alpha1.ApplicationFrom(u); app.Status.OperationState == nil || app.Status.OperationState.Phase != v1alpha1.OperationFailed {
		t.Errorf("a later status without operationState removed the failed result: %+v", app.Status)
	}
}
