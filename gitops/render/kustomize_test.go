package render

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/types"
)

const (
	baseDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
`
	baseService = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`
	baseKustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deployment.yaml
- service.yaml
`
)

func kustomizeRepo(t *testing.T) string {
	return writeTree(t, map[string]string{
		"base/kustomization.yaml": baseKustomization,
		"base/deployment.yaml":    baseDeployment,
		"base/service.yaml":       baseService,
		"overlays/prod/kustomization.yml": `resources:
- ../../base
namePrefix: prod-
patches:
- path: replicas.yaml
`,
		"overlays/prod/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
		// Picked up by nothing: Kustomize folders are not walked.
		"overlays/prod/stray.yaml": cm("stray"),
	})
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in %v", kind, name, ids(objs))
	return nil
}

func TestRenderKustomizeBase(t *testing.T) {
	root := kustomizeRepo(t)
	objs, err := Render(root, "base", Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Kustomize keeps the order of the resources list.
	if got := ids(objs); !reflect.DeepEqual(got, []string{"Deployment/web", "Service/web"}) {
		t.Fatalf("got %v", got)
	}
}

func TestRenderKustomizeOverlay(t *testing.T) {
	root := kustomizeRepo(t)
	objs, err := Render(root, "overlays/prod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(objs); !reflect.DeepEqual(got, []string{"Deployment/prod-web", "Service/prod-web"}) {
		t.Fatalf("got %v", got)
	}
	d := find(t, objs, "Deployment", "prod-web")
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Fatalf("replicas = %d, want 3", r)
	}
	_ = d.DeepCopy() // int64 everywhere, or this panics
	again, err := Render(root, "overlays/prod", Options{})
	if err != nil || !reflect.DeepEqual(again, objs) {
		t.Fatalf("render is not deterministic: %v", err)
	}
}

func TestRenderKustomizeOptions(t *testing.T) {
	root := kustomizeRepo(t)
	before := snapshot(t, root)
	objs, err := Render(root, "overlays/prod", Options{Kustomize: &KustomizeOptions{
		NamePrefix:   "eu-",
		NameSuffix:   "-v2",
		Namespace:    "shop",
		CommonLabels: map[string]string{"team": "payments"},
		Images:       []string{"nginx=registry.local:5000/mirror/nginx:1.27"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(objs); !reflect.DeepEqual(got, []string{"Deployment/shop/eu-prod-web-v2", "Service/shop/eu-prod-web-v2"}) {
		t.Fatalf("got %v", got)
	}
	d := find(t, objs, "Deployment", "eu-prod-web-v2")
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Fatalf("overlay patch lost: replicas = %d", r)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if img := containers[0].(map[string]any)["image"]; img != "registry.local:5000/mirror/nginx:1.27" {
		t.Fatalf("image = %v", img)
	}
	for _, path := range [][]string{
		{"metadata", "labels"},
		{"spec", "selector", "matchLabels"},
		{"spec", "template", "metadata", "labels"},
	} {
		if v, _, _ := unstructured.NestedString(d.Object, append(path, "team")...); v != "payments" {
			t.Errorf("%v.team = %q", path, v)
		}
	}
	if !reflect.DeepEqual(before, snapshot(t, root)) {
		t.Fatal("rendering with options modified the checkout")
	}

	// Options that change nothing take the direct path and give the same result.
	plain, err := Render(root, "overlays/prod", Options{Kustomize: &KustomizeOptions{}})
	if err != nil || !reflect.DeepEqual(ids(plain), []string{"Deployment/prod-web", "Service/prod-web"}) {
		t.Fatalf("got %v %v", ids(plain), err)
	}
}

// snapshot lists every path and content under root.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b := []byte{}
		if fi.Mode().IsRegular() {
			b, err = os.ReadFile(p)
		}
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRenderKustomizeOptionsNeedKustomization(t *testing.T) {
	root := writeTree(t, map[string]string{"app/a.yaml": cm("a")})
	_, err := Render(root, "app", Options{Kustomize: &KustomizeOptions{NamePrefix: "x-"}})
	if err == nil || !strings.HasPrefix(err.Error(), "app: Kustomize options given") {
		t.Fatalf("got %v", err)
	}
}

func TestRenderKustomizeErrors(t *testing.T) {
	t.Run("missing resource", func(t *testing.T) {
		root := writeTree(t, map[string]string{
			"app/kustomization.yaml": "resources:\n- deployment.yaml\n- missing.yaml\n",
			"app/deployment.yaml":    baseDeployment,
		})
		objs, err := Render(root, "app", Options{})
		var re *RenderError
		if objs != nil || !errors.As(err, &re) {
			t.Fatalf("got %v, %v", ids(objs), err)
		}
		if re.File != "app/kustomization.yaml" || !strings.Contains(re.Msg, "missing.yaml") {
			t.Fatalf("got %+v", re)
		}
		if strings.Contains(re.Msg, root) {
			t.Fatalf("message leaks the local checkout path: %s", re.Msg)
		}
	})
	t.Run("broken yaml in a resource", func(t *testing.T) {
		root := writeTree(t, map[string]string{
			"app/Kustomization":   "resources:\n- deployment.yaml\n",
			"app/deployment.yaml": "kind: Deployment: x\n",
		})
		_, err := Render(root, "app", Options{})
		if err == nil || !strings.HasPrefix(err.Error(), "app/Kustomization: kustomize: ") || !strings.Contains(err.Error(), "deployment.yaml") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("broken kustomization with options", func(t *testing.T) {
		root := writeTree(t, map[string]string{"app/kustomization.yaml": "resources: [nope.yaml]\n"})
		_, err := Render(root, "app", Options{Kustomize: &KustomizeOptions{Namespace: "x"}})
		if err == nil || !strings.HasPrefix(err.Error(), "app/kustomization.yaml: kustomize: ") ||
			strings.Contains(err.Error(), os.TempDir()) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad image override", func(t *testing.T) {
		root := kustomizeRepo(t)
		_, err := Render(root, "base", Options{Kustomize: &KustomizeOptions{Images: []string{"nginx"}}})
		if want := `base/kustomization.yaml: invalid image override "nginx": no new name, tag or digest`; err == nil || err.Error() != want {
			t.Fatalf("got %v", err)
		}
	})
}

func TestRenderKustomizeStaysInRepo(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "repo")
	files := map[string]string{
		"outside/kustomization.yaml":   "resources: [cm.yaml]\n",
		"outside/cm.yaml":              cm("stolen"),
		"repo/app/kustomization.yaml":  "resources:\n- ../../outside\n",
		"repo/file/kustomization.yaml": "resources:\n- ../../outside/cm.yaml\n",
		"repo/link/kustomization.yaml": "resources:\n- cm.yaml\n",
	}
	for p, c := range files {
		full := filepath.Join(parent, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(parent, "outside", "cm.yaml"), filepath.Join(root, "link", "cm.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"app", "file", "link"} {
		objs, err := Render(root, app, Options{})
		if objs != nil || err == nil {
			t.Errorf("%s: got %v, %v; want an error", app, ids(objs), err)
			continue
		}
		if !strings.HasPrefix(err.Error(), app+"/kustomization.yaml: kustomize: ") ||
			!strings.Contains(err.Error(), "outside the repository") || strings.Contains(err.Error(), parent) {
			t.Errorf("%s: got %v", app, err)
		}
	}
}

func TestParseImage(t *testing.T) {
	cases := []struct {
		in   string
		want types.Image
		err  bool
	}{
		{in: "nginx:1.27", want: types.Image{Name: "nginx", NewTag: "1.27"}},
		{in: "nginx=my/nginx", want: types.Image{Name: "nginx", NewName: "my/nginx"}},
		{in: "nginx=my/nginx:1.27", want: types.Image{Name: "nginx", NewName: "my/nginx", NewTag: "1.27"}},
		{in: "nginx=reg:5000/nginx", want: types.Image{Name: "nginx", NewName: "reg:5000/nginx"}},
		{in: "nginx=reg:5000/nginx:1.2", want: types.Image{Name: "nginx", NewName: "reg:5000/nginx", NewTag: "1.2"}},
		{in: "nginx@sha256:abc", want: types.Image{Name: "nginx", Digest: "sha256:abc"}},
		{in: "nginx=reg/nginx@sha256:abc", want: types.Image{Name: "nginx", NewName: "reg/nginx", Digest: "sha256:abc"}},
		{in: "reg:5000/app:v1", want: types.Image{Name: "reg:5000/app", NewTag: "v1"}},
		{in: "nginx", err: true},
		{in: "=x:1", err: true},
		{in: "nginx=", err: true},
		{in: "", err: true},
	}
	for _, tc := range cases {
		got, err := parseImage(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("parseImage(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

// Agents render many Applications at once; krusty keeps some process-wide
// caches, so make sure concurrent renders are race-free.
func TestRenderKustomizeConcurrent(t *testing.T) {
	root := kustomizeRepo(t)
	done := make(chan error)
	for i := 0; i < 8; i++ {
		go func() {
			var opts Options
			if i%2 == 0 {
				opts.Kustomize = &KustomizeOptions{Namespace: "n", Images: []string{"nginx:1.27"}}
			}
			_, err := Render(root, "overlays/prod", opts)
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
