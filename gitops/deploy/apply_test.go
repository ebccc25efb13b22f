package deploy

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// testCluster returns the cluster named by TETHER_TEST_KUBECONFIG (and
// TETHER_TEST_CONTEXT, default the current context), or skips. Scenarios
// apply these manifests to embedded clusters anyway; this test lets the
// package be checked against a real API server on its own.
func testCluster(t *testing.T) *rest.Config {
	t.Helper()
	path := os.Getenv("TETHER_TEST_KUBECONFIG")
	if path == "" {
		t.Skip("TETHER_TEST_KUBECONFIG names no cluster")
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
		&clientcmd.ConfigOverrides{CurrentContext: os.Getenv("TETHER_TEST_CONTEXT")},
	).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestApplyAndDeleteOnCluster(t *testing.T) {
	cfg := testCluster(t)
	ctx := t.Context()
	// A namespace of its own: the test must not touch a real installation,
	// and Apply has to create it.
	ns := fmt.Sprintf("tether-deploytest-%d", time.Now().UnixNano()%1_000_000)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		_ = dyn.Resource(corev1.SchemeGroupVersion.WithResource("namespaces")).Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	var objs []*unstructured.Unstructured
	for _, build := range []func() ([]*unstructured.Unstructured, error){
		func() ([]*unstructured.Unstructured, error) {
			return Principal(Options{Image: testImage, Namespace: ns, TLS: tlsFor(t, PrincipalName, true)})
		},
		func() ([]*unstructured.Unstructured, error) {
			return Agent(Options{Image: testImage, Namespace: ns, Spoke: "spoke-1", PrincipalAddress: "tether-principal:8443", TLS: tlsFor(t, "spoke-1", false)})
		},
		func() ([]*unstructured.Unstructured, error) {
			return GitServer(Options{Image: testImage, Namespace: ns})
		},
	} {
		o, err := build()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	c, err := newClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	live := func(o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		r, err := c.resource(o)
		if err != nil {
			return nil, err
		}
		return r.Get(ctx, o.GetName(), metav1.GetOptions{})
	}

	if err := Apply(ctx, cfg, objs, ""); err != nil {
		t.Fatal(err)
	}
	first := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		got, err := live(o)
		if err != nil {
			t.Fatalf("%s after apply: %v", describe(o), err)
		}
		first[describe(o)] = got
		if !managedBy(got, FieldManager) {
			t.Errorf("%s: no apply entry for %q in managedFields", describe(o), FieldManager)
		}
	}

	// Applying the same objects again changes nothing: no new generation
	// for the Deployments (status updates may bump their resourceVersion),
	// no new resourceVersion for anything else.
	if err := Apply(ctx, cfg, objs, ""); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	for _, o := range objs {
		got, err := live(o)
		if err != nil {
			t.Fatal(err)
		}
		before := first[describe(o)]
		if o.GetKind() == "Deployment" {
			if got.GetGeneration() != before.GetGeneration() {
				t.Errorf("%s: generation %d -> %d on a repeated apply", describe(o), before.GetGeneration(), got.GetGeneration())
			}
		} else if got.GetResourceVersion() != before.GetResourceVersion() {
			t.Errorf("%s changed on a repeated apply", describe(o))
		}
	}

	if err := Delete(ctx, cfg, objs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, o := range objs {
		for {
			_, err := live(o)
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still there after Delete (%v)", describe(o), err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := Delete(ctx, cfg, objs); err != nil {
		t.Errorf("deleting what is gone: %v", err)
	}
}

func managedBy(obj *unstructured.Unstructured, manager string) bool {
	for _, f := range obj.GetManagedFields() {
		if f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}
