package engine

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/tether-dev/tether/cluster/kubeapply"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

func crdResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
}

// InstallCRD installs the Application CRD (what a spoke needs).
func InstallCRD(ctx context.Context, cfg *rest.Config) error {
	return InstallCRDs(ctx, cfg, v1alpha1.ApplicationCRD())
}

// InstallCRDs applies CRDs (server-side apply, so a newer tether upgrades
// them in place) and waits until the API serves each of them.
func InstallCRDs(ctx context.Context, cfg *rest.Config, docs ...[]byte) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	e := &Engine{dyn: dyn}
	for _, doc := range docs {
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal(doc, &crd.Object); err != nil {
			return fmt.Errorf("decode CRD: %w", err)
		}
		if err := kubeapply.Apply(ctx, dyn.Resource(crdResource()), &crd, applyOptions(false)); err != nil {
			return fmt.Errorf("install CRD %s: %w", crd.GetName(), err)
		}
		if err := e.waitEstablished(ctx, []string{crd.GetName()}); err != nil {
			return err
		}
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		version := ""
		if len(versions) > 0 {
			version, _ = versions[0].(map[string]any)["name"].(string)
		}
		gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
		// Discovery lags establishment by a moment; wait until a list works.
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not served after install: %w", crd.GetName(), err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
