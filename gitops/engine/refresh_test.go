package engine

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// The engine removes only the refresh it served: a request that came in
// while it fetched (the agent relays the hub's this way) must stay for a
// fetch of its own. The fake client reports a failed test op as a plain
// error where an API server answers 422; the annotation is what counts.
func TestClearRefreshRemovesOnlyTheValueServed(t *testing.T) {
	app := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "tether-system", Name: "sample", Annotations: map[string]string{v1alpha1.AnnotationRefresh: "newer", "keep": "me"}},
		Spec:       v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: "http://git/x.git"}, Destination: v1alpha1.Destination{Namespace: "x"}},
	}
	u, err := app.Unstructured()
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.ApplicationsResource: "ApplicationList"}, u)
	e := &Engine{dyn: dyn}
	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace("tether-system")
	annotations := func() map[string]string {
		got, err := res.Get(context.Background(), "sample", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got.GetAnnotations()
	}

	_ = e.clearRefresh(context.Background(), app, "older")
	if v := annotations()[v1alpha1.AnnotationRefresh]; v != "newer" {
		t.Fatalf("after serving an older request the annotation is %q, want the newer request kept", v)
	}
	if err := e.clearRefresh(context.Background(), app, "newer"); err != nil {
		t.Fatal(err)
	}
	got := annotations()
	if _, ok := got[v1alpha1.AnnotationRefresh]; ok || got["keep"] != "me" {
		t.Errorf("after serving it: annotations %v, want only the refresh gone", got)
	}
}
