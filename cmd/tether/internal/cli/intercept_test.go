package cli

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/intercept/record"
)

// uninstall says what it removed where, and says so when there was
// nothing to remove instead of reporting an uninstall that did nothing.
func TestInterceptUninstallReportsWhatItFound(t *testing.T) {
	ctx := context.Background()
	clean := func() kubernetes.Interface {
		return fake.NewClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}})
	}
	leftover := func() kubernetes.Interface {
		return fake.NewClientset(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Name: record.LeaseName("web-80"), Namespace: "shop", Labels: record.Labels("web-80", "web")}})
	}
	clusters := func(cs map[string]kubernetes.Interface) func(func(string, kubernetes.Interface) error) error {
		return func(fn func(string, kubernetes.Interface) error) error {
			for _, name := range slices.Sorted(maps.Keys(cs)) {
				if err := fn(name, cs[name]); err != nil {
					return err
				}
			}
			return nil
		}
	}

	var out strings.Builder
	if err := uninstallIntercepts(ctx, &out, clusters(map[string]kubernetes.Interface{"hub": clean(), "spoke-1": clean()})); err != nil {
		t.Fatalf("nothing to remove is not an error: %v", err)
	}
	if got, want := out.String(), "nothing to uninstall: no intercept, traffic-agent or taken-over Service in hub, spoke-1\n"; got != want {
		t.Errorf("clean clusters: %q, want %q", got, want)
	}

	out.Reset()
	if err := uninstallIntercepts(ctx, &out, clusters(map[string]kubernetes.Interface{"hub": leftover(), "spoke-1": clean()})); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "hub: Lease shop/"+record.LeaseName("web-80")+" removed\nintercepts uninstalled\n"; got != want {
		t.Errorf("a leftover on the hub: %q, want %q", got, want)
	}
}
