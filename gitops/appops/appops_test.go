package appops

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/engine"
)

// workbench is a hub and two spokes, as a fresh `tether up` records them.
type workbench struct{ cfg cluster.Config }

func newWorkbench() *workbench {
	return &workbench{cfg: cluster.Config{Hub: cluster.ClusterConfig{Name: "hub"}, Spokes: cluster.SpokeNames(2)}}
}

func (w *workbench) RecordedConfig() (cluster.Config, error) { return w.cfg, nil }
func (w *workbench) RESTConfig(name string) (*rest.Config, error) {
	for _, c := range w.cfg.Clusters() {
		if c.Name == name {
			return &rest.Config{Host: "https://" + name}, nil
		}
	}
	return nil, errors.New("no cluster " + name)
}

func app(ns, name string, mutate ...func(*v1alpha1.Application)) *unstructured.Unstructured {
	a := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: "http://git/sample.git", Path: "overlays/" + ns},
			Destination: v1alpha1.Destination{Namespace: "sample"},
		},
	}
	for _, m := range mutate {
		m(a)
	}
	u, err := a.Unstructured()
	if err != nil {
		panic(err)
	}
	return u
}

func fakeDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.ApplicationsResource: "ApplicationList"}, objs...)
}

func newClient(t *testing.T, dyn dynamic.Interface, wb Workbench, clusterName string) *Client {
	t.Helper()
	c, err := New(Options{Config: &rest.Config{Host: "https://" + clusterName}, Dynamic: dyn, Workbench: wb, Cluster: clusterName, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClusterOfContextAndHub(t *testing.T) {
	wb := newWorkbench()
	wb.cfg.Spokes[1].Context = "my-spoke" // an existing cluster, named by the user's context
	for ctx, want := range map[string]string{"tether-hub": "hub", "tether-spoke-1": "spoke-1", "my-spoke": "spoke-2", "kind-other": "", "": ""} {
		if got := ClusterOfContext(wb, ctx); got != want {
			t.Errorf("ClusterOfContext(%q) = %q, want %q", ctx, got, want)
		}
	}
	if !newClient(t, fakeDynamic(), wb, "hub").Hub() {
		t.Error("the hub's client does not know it is the hub")
	}
	if newClient(t, fakeDynamic(), wb, "spoke-1").Hub() || newClient(t, fakeDynamic(), nil, "").Hub() {
		t.Error("a spoke's client, or one outside the workbench, takes itself for the hub")
	}
}

func TestListEveryNamespaceSorted(t *testing.T) {
	c := newClient(t, fakeDynamic(app("spoke-2", "sample"), app("spoke-1", "web"), app("spoke-1", "sample")), newWorkbench(), "hub")
	apps, err := c.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range apps {
		got = append(got, a.Namespace+"/"+a.Name)
	}
	if strings.Join(got, " ") != "spoke-1/sample spoke-1/web spoke-2/sample" {
		t.Errorf("List(all) = %v", got)
	}
	one, err := c.List(context.Background(), "spoke-2")
	if err != nil || len(one) != 1 {
		t.Errorf("List(spoke-2) = %v, %v; want its one Application", one, err)
	}
}

// The principal's side of a hub request is simulated: it writes the answer
// onto the hub's copy, which is all the waits read.
func TestSyncAndWaitSeeTheAnswerOnTheHubCopy(t *testing.T) {
	dyn := fakeDynamic(app("spoke-1", "sample"))
	c := newClient(t, dyn, newWorkbench(), "hub")
	ctx := context.Background()
	id, err := c.Sync(ctx, "spoke-1", "sample", SyncRequest{Revision: "main", Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "spoke-1", "sample")
	if err != nil {
		t.Fatal(err)
	}
	if op := got.Operation; op == nil || op.ID != id || op.Sync == nil || op.Sync.Revision != "main" || !op.Sync.Prune {
		t.Fatalf("operation on the hub copy = %+v, want ID %s, revision main, prune", op, id)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		answer(t, dyn, "spoke-1", "sample", func(a *v1alpha1.Application) {
			a.Operation = nil
			a.Status.OperationState = &v1alpha1.OperationState{Operation: v1alpha1.Operation{ID: id}, Phase: v1alpha1.OperationSucceeded, Message: "synced 2 resources"}
		})
	}()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.WaitSync(wctx, "spoke-1", "sample", id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != v1alpha1.OperationSucceeded || st.Message != "synced 2 resources" {
		t.Errorf("WaitSync = %+v", st)
	}

	if _, err := c.Sync(ctx, "spoke-1", "nope", SyncRequest{}); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "spoke spoke-1") {
		t.Errorf("Sync of a missing Application: %v, want a not-found error naming the spoke", err)
	}
}

func TestRefreshWaitsForItsAnnotationToGo(t *testing.T) {
	dyn := fakeDynamic(app("spoke-1", "sample"))
	c := newClient(t, dyn, newWorkbench(), "hub")
	ctx := context.Background()
	id, err := c.Refresh(ctx, "spoke-1", "sample")
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := c.Refresh(ctx, "spoke-1", "sample")
	if id2 == id {
		t.Fatalf("two refreshes got the same ID %q: an answer to one would be taken for the other", id)
	}
	// Nobody answers: the wait ends with the context, saying so.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.WaitRefresh(short, "spoke-1", "sample", id2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRefresh with no answer: %v, want the deadline", err)
	}
	at := metav1.NewTime(time.Now().Truncate(time.Second))
	go func() {
		time.Sleep(50 * time.Millisecond)
		answer(t, dyn, "spoke-1", "sample", func(a *v1alpha1.Application) {
			a.Status.ReconciledAt = &at
			a.Status.Sync.Status = v1alpha1.SyncStatusSynced
			delete(a.Annotations, v1alpha1.AnnotationRefresh)
		})
	}()
	wctx, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	got, err := c.WaitRefresh(wctx, "spoke-1", "sample", id2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.ReconciledAt == nil || !got.Status.ReconciledAt.Equal(&at) || got.Status.Sync.Status != v1alpha1.SyncStatusSynced {
		t.Errorf("WaitRefresh returned status %+v, want the answer's", got.Status)
	}
}

// answer edits the hub's copy as the principal would.
func answer(t *testing.T, dyn dynamic.Interface, ns, name string, edit func(*v1alpha1.Application)) {
	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns)
	u, err := res.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
		return
	}
	a, err := v1alpha1.ApplicationFrom(u)
	if err != nil {
		t.Error(err)
		return
	}
	edit(a)
	nu, _ := a.Unstructured()
	if _, err := res.Update(context.Background(), nu, metav1.UpdateOptions{}); err != nil {
		t.Error(err)
	}
}

func TestDiffOfAHubApplicationReadsTheSpoke(t *testing.T) {
	hub := fakeDynamic(app("spoke-1", "sample"), app("spoke-2", "sample"), app("spoke-9", "sample"))
	spokeCopy := app(cluster.SystemNamespace, "sample", func(a *v1alpha1.Application) {
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.Automated{Prune: true}}
	})
	spoke := fakeDynamic(spokeCopy)
	c := newClient(t, hub, newWorkbench(), "hub")
	c.newDynamic = func(cfg *rest.Config) (dynamic.Interface, error) {
		if cfg.Host == "https://spoke-1" {
			return spoke, nil
		}
		return fakeDynamic(), nil
	}
	var gotHost, gotNS string
	var gotPrune bool
	c.diff = func(_ context.Context, cfg *rest.Config, ns string, a *v1alpha1.Application, prune bool) (string, []engine.ResourceDiff, error) {
		gotHost, gotNS, gotPrune = cfg.Host, ns, prune
		if a.Namespace != cluster.SystemNamespace {
			t.Errorf("diffed the Application of namespace %s, want the spoke's copy in %s", a.Namespace, cluster.SystemNamespace)
		}
		return "0123456789abcdef", nil, nil
	}
	d, err := c.Diff(context.Background(), "spoke-1", "sample", false)
	if err != nil {
		t.Fatal(err)
	}
	if gotHost != "https://spoke-1" || gotNS != cluster.SystemNamespace || !gotPrune {
		t.Errorf("diff ran on %s in %s (prune %t), want spoke-1's API server, %s, prune from the spoke copy's policy", gotHost, gotNS, gotPrune, cluster.SystemNamespace)
	}
	if d.Spoke != "spoke-1" || d.Revision != "0123456789abcdef" || len(d.Resources) != 0 {
		t.Errorf("Diff = %+v", d)
	}

	// A spoke the workbench does not have, and one whose agent has not
	// made its copy yet, are said as such.
	if _, err := c.Diff(context.Background(), "spoke-9", "sample", false); err == nil || !strings.Contains(err.Error(), "spoke spoke-9, which the workbench does not have") {
		t.Errorf("Diff on an unknown spoke: %v", err)
	}
	if _, err := c.Diff(context.Background(), "spoke-2", "sample", false); err == nil || !strings.Contains(err.Error(), "its agent has not created it") {
		t.Errorf("Diff before the agent made the spoke's copy: %v", err)
	}
	if _, err := c.Diff(context.Background(), "spoke-1", "nope", false); !apierrors.IsNotFound(err) {
		t.Errorf("Diff of a missing hub Application: %v, want not found", err)
	}
}

func TestDiffOnASpokeReadsItself(t *testing.T) {
	c := newClient(t, fakeDynamic(app(cluster.SystemNamespace, "sample")), newWorkbench(), "spoke-1")
	c.newDynamic = func(*rest.Config) (dynamic.Interface, error) {
		t.Error("a spoke's diff dialled another cluster")
		return nil, errors.New("no")
	}
	var host string
	c.diff = func(_ context.Context, cfg *rest.Config, ns string, _ *v1alpha1.Application, prune bool) (string, []engine.ResourceDiff, error) {
		host = cfg.Host
		return "abc", []engine.ResourceDiff{{Resource: "v1/ConfigMap sample/x", Action: engine.ActionUpdate}}, nil
	}
	d, err := c.Diff(context.Background(), cluster.SystemNamespace, "sample", false)
	if err != nil {
		t.Fatal(err)
	}
	if host != "https://spoke-1" || d.Spoke != "" || len(d.Resources) != 1 {
		t.Errorf("Diff on the spoke: host %s, %+v", host, d)
	}
}
