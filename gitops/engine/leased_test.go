package engine

import (
	"context"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// A unit test of the rule, with a fake client for the Lease; the live
// proof (an intercept of the sample's self-healed Service) is the
// intercept-sample scenario.
func TestHonorLeaseKeepsLeasedFieldsWhileTheLeaseIsRenewed(t *testing.T) {
	desiredYAML := `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: sample}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`
	live := func(annotation string) *unstructured.Unstructured {
		u := obj(t, `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: sample}
spec:
  selector: {tether.dev/service: web}
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
`)
		if annotation != "" {
			u.SetAnnotations(map[string]string{v1alpha1.AnnotationLeasedFields: annotation})
		}
		return u
	}
	held := v1alpha1.LeasedFields{Lease: "tether-agent-web", Fields: []string{"spec.selector"}}.Value()
	lease := func(renewed time.Time) runtime.Object {
		d := int32(10)
		rt := metav1.NewMicroTime(renewed)
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "tether-agent-web", Namespace: "sample"},
			Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: &d, RenewTime: &rt}}
	}
	for _, tc := range []struct {
		name       string
		annotation string
		lease      runtime.Object
		wantHeld   bool
	}{
		{"live lease: the selector stays the borrower's", held, lease(time.Now()), true},
		{"lapsed lease: Git's selector comes back", held, lease(time.Now().Add(-time.Minute)), false},
		{"no lease: Git's selector comes back", held, nil, false},
		{"malformed annotation: Git wins", `{"lease":""}`, lease(time.Now()), false},
		{"no annotation: Git wins", "", lease(time.Now()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.lease != nil {
				objs = append(objs, tc.lease)
			}
			scheme := runtime.NewScheme()
			if err := coordinationv1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			e := &Engine{log: slog.New(slog.DiscardHandler), dyn: dynamicfake.NewSimpleDynamicClient(scheme, objs...)}
			tg := &target{obj: obj(t, desiredYAML), live: live(tc.annotation)}
			p := &plan{}
			if err := e.honorLease(context.Background(), tg, p); err != nil {
				t.Fatal(err)
			}
			sel, _, _ := unstructured.NestedStringMap(tg.obj.Object, "spec", "selector")
			inSyncNow, path := inSync(tg.obj, tg.live)
			if tc.wantHeld {
				if sel["tether.dev/service"] != "web" || len(sel) != 1 {
					t.Errorf("desired selector %v, want the live one kept", sel)
				}
				if !inSyncNow {
					t.Errorf("not in sync at %s while the lease holds the selector", path)
				}
				if until := time.Until(p.leasedUntil); until <= 0 || until > 11*time.Second {
					t.Errorf("leasedUntil in %s, want within the lease's 10 s", until)
				}
				return
			}
			if sel["app"] != "web" || len(sel) != 1 {
				t.Errorf("desired selector %v, want Git's", sel)
			}
			if inSyncNow {
				t.Error("in sync, want the borrowed selector seen as drift")
			}
			if !p.leasedUntil.IsZero() {
				t.Errorf("leasedUntil %s, want none", p.leasedUntil)
			}
		})
	}
}
