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

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

func crdResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
}

// InstallCRD applies the Application CRD (server-side apply, so a newer
// tether upgrades it in place) and waits until the API serves it.
func InstallCRD(ctx context.Context, cfg *rest.Config) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal(v1alpha1.ApplicationCRD(), &crd.Object); err != nil {
		return fmt.Errorf("decode Application CRD: %w", err)
	}
	if _, err := dyn.Resource(crdResource()).Apply(ctx, crd.GetName(), &crd, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("install Application CRD: %w", err)
	}
	e := &Engine{dyn: dyn}
	if err := e.waitEstablished(ctx, []string{crd.GetName()}); err != nil {
		return err
	}
	// Discovery lags establishment by a moment; wait until a list works.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dyn.Resource(v1alpha1.ApplicationsResource).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Application API not served after install: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
