package kubeapply

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A typed object goes out as an apply patch under the field manager, with
// force and dry run as asked, and without the empty status and null
// creationTimestamp its struct carries; applying again updates it.
func TestApplyTyped(t *testing.T) {
	cs := fake.NewClientset()
	var seen []k8stesting.PatchActionImpl
	cs.PrependReactor("patch", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		seen = append(seen, a.(k8stesting.PatchActionImpl))
		return false, nil, nil
	})
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"},
		Data:       map[string]string{"k": "1"},
	}
	apply := func(o Options) {
		t.Helper()
		body, err := FromTyped(cm)
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(t.Context(), cs.CoreV1().ConfigMaps("ns"), body, o); err != nil {
			t.Fatal(err)
		}
	}
	apply(Options{FieldManager: "tether", Force: true})
	cm.Data["k"] = "2"
	apply(Options{FieldManager: "tether", Force: true})

	got, err := cs.CoreV1().ConfigMaps("ns").Get(t.Context(), "cm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["k"] != "2" {
		t.Errorf("after the second apply data is %v, want k=2", got.Data)
	}
	if len(seen) != 2 {
		t.Fatalf("%d patches, want 2", len(seen))
	}
	a := seen[0]
	if a.GetPatchType() != types.ApplyPatchType {
		t.Errorf("patch type %q, want %q", a.GetPatchType(), types.ApplyPatchType)
	}
	if a.PatchOptions.FieldManager != "tether" || a.PatchOptions.Force == nil || !*a.PatchOptions.Force || len(a.PatchOptions.DryRun) != 0 {
		t.Errorf("patch options %+v, want field manager tether, force, no dry run", a.PatchOptions)
	}
	var body map[string]any
	if err := json.Unmarshal(a.GetPatch(), &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["status"]; ok {
		t.Errorf("body has a status: %s", a.GetPatch())
	}
	if _, ok := body["metadata"].(map[string]any)["creationTimestamp"]; ok {
		t.Errorf("body has a creationTimestamp: %s", a.GetPatch())
	}
}

// The dynamic client is served by the same Apply, and DryRun reaches the
// API server as dryRun=All.
func TestApplyDynamicDryRun(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	var opts []metav1.PatchOptions
	dyn.PrependReactor("patch", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts = append(opts, a.(k8stesting.PatchActionImpl).PatchOptions)
		return true, &unstructured.Unstructured{}, nil
	})
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "x"}}}
	r := dyn.Resource(corev1.SchemeGroupVersion.WithResource("namespaces"))
	if err := Apply(t.Context(), r, ns, Options{FieldManager: "m", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if len(opts) != 1 || opts[0].FieldManager != "m" || len(opts[0].DryRun) != 1 || opts[0].DryRun[0] != metav1.DryRunAll || opts[0].Force == nil || *opts[0].Force {
		t.Errorf("patch options %+v, want field manager m, dry run All, force false", opts)
	}
}
