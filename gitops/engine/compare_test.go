package engine

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestInSyncIgnoresServerDefaultsButNotDrift(t *testing.T) {
	desired := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
        resources: {limits: {cpu: "0.5", memory: 128Mi}}
`
	live := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web, extra: x}, resourceVersion: "7", uid: abc}
spec:
  replicas: 2
  progressDeadlineSeconds: 600
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
        imagePullPolicy: IfNotPresent
        resources: {limits: {cpu: 500m, memory: 128Mi}}
status: {replicas: 2}
`
	cases := []struct {
		name     string
		live     string
		inSync   bool
		wantPath string
	}{
		{"defaults and extra labels are fine", live, true, ""},
		{"replicas drift", replace(live, "replicas: 2\n  progress", "replicas: 5\n  progress"), false, "spec.replicas"},
		{"image drift", replace(live, "image: nginx:1.27", "image: nginx:1.25"), false, "spec.template.spec.containers[0].image"},
		{"label removed", replace(live, "labels: {app: web, extra: x}", "labels: {extra: x}"), false, "metadata.labels.app"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, path := inSync(obj(t, desired), obj(t, tc.live))
			if ok != tc.inSync || path != tc.wantPath {
				t.Fatalf("inSync = %v %q, want %v %q", ok, path, tc.inSync, tc.wantPath)
			}
		})
	}
	if ok, path := inSync(obj(t, desired), nil); ok || path != "missing" {
		t.Fatalf("missing live = %v %q", ok, path)
	}
	// A container added on the cluster is drift even though every desired
	// item still matches: the list is not the one Git declares.
	grown := replace(live, "status:", "      - {name: side, image: busybox}\nstatus:")
	if ok, path := inSync(obj(t, desired), obj(t, grown)); ok || path != "spec.template.spec.containers" {
		t.Fatalf("extra container = %v %q", ok, path)
	}
}

func TestScalarEqual(t *testing.T) {
	cases := []struct {
		a, b any
		want bool
	}{
		{int64(2), float64(2), true},
		{int64(2), int64(3), false},
		{"0.5", "500m", true},
		{"1Gi", "1024Mi", true},
		{"1Gi", "1G", false},
		{"web", "web", true},
		{"web", "api", false},
		{true, false, false},
	}
	for _, c := range cases {
		if got := scalarEqual(c.a, c.b); got != c.want {
			t.Errorf("scalarEqual(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func replace(s, old, new string) string { return strings.ReplaceAll(s, old, new) }
