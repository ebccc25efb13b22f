package cli

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/appops"
	"github.com/tether-dev/tether/gitops/engine"
)

func listed(ns, name string) v1alpha1.Application {
	a := v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	a.Spec.Source = v1alpha1.Source{RepoURL: "http://git/sample.git", Path: "overlays/" + ns}
	a.Status.Sync = v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusSynced, Revision: "0123456789abcdef"}
	a.Status.Health.Status = "Healthy"
	return a
}

func TestAppListAllNamespacesNamesTheSpokeOnTheHub(t *testing.T) {
	apps := []v1alpha1.Application{listed("spoke-1", "sample"), listed("spoke-2", "sample")}
	for _, tc := range []struct {
		name      string
		all, hub  bool
		wantFirst string
	}{
		{"hub -A", true, true, "SPOKE"},
		{"spoke -A", true, false, "NAMESPACE"},
		{"one namespace", false, true, "NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printAppList(&globals{out: &out}, apps, tc.all, tc.hub, "spoke-1")
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 3 || strings.Fields(lines[0])[0] != tc.wantFirst {
				t.Fatalf("list:\n%s\nwant a header starting %s and two rows", out.String(), tc.wantFirst)
			}
			if tc.all && !strings.HasPrefix(lines[2], "spoke-2 ") {
				t.Errorf("row %q does not start with its namespace", lines[2])
			}
		})
	}
	var out bytes.Buffer
	printAppList(&globals{out: &out}, nil, false, true, "tether-system")
	if !strings.Contains(out.String(), "-A") {
		t.Errorf("an empty tether-system on the hub says %q, want the way to every spoke's", out.String())
	}
}

func TestAppDiffSaysWhichSpokeItCompared(t *testing.T) {
	var out bytes.Buffer
	printDiff(&globals{out: &out}, "sample", &appops.Diff{Revision: "0123456789abcdef", Spoke: "spoke-1"})
	if got := out.String(); got != "sample is in sync with 01234567 on spoke-1.\n" {
		t.Errorf("in sync on the hub: %q", got)
	}
	out.Reset()
	printDiff(&globals{out: &out}, "sample", &appops.Diff{Revision: "0123456789abcdef", Resources: []engine.ResourceDiff{{Resource: "apps/v1/Deployment sample/web", Action: engine.ActionCreate}}})
	if got := out.String(); !strings.HasPrefix(got, "A sync of sample to 01234567 would change 1 resources:\n\nCreate apps/v1/Deployment sample/web") {
		t.Errorf("diff on a spoke: %q", got)
	}
}

// -A is a flag of list now; with no cluster it fails for want of one.
func TestAppListAcceptsAllNamespaces(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.run(t, "app", "list", "-A", "--context", "tether-hub")
	if err == nil || strings.Contains(err.Error(), "unknown shorthand") {
		t.Fatalf("app list -A without a workbench: %v, want a missing-context error", err)
	}
	if !strings.Contains(err.Error(), "tether-hub") {
		t.Errorf("error %q does not name the context", err)
	}
}
