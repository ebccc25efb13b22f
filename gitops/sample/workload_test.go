package sample

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tether-dev/tether/gitops/gitserver"
)

func sampleObjects(t *testing.T, files map[string][]byte, deploymentFile string) (appsv1.Deployment, corev1.Service) {
	t.Helper()
	var d appsv1.Deployment
	if err := sigsyaml.UnmarshalStrict(files[deploymentFile], &d); err != nil {
		t.Fatalf("%s: %v", deploymentFile, err)
	}
	var svc corev1.Service
	docs := strings.Split(string(files[PlainConfigAndService]), "\n---\n")
	if err := sigsyaml.UnmarshalStrict([]byte(docs[1]), &svc); err != nil {
		t.Fatal(err)
	}
	return d, svc
}

// The sample runs tether's own image with `tether sample serve`, probed on
// /healthz, and its Service keeps port 80, mapped to the container's port.
func TestTetherWorkload(t *testing.T) {
	const ref = "tether.local/tether:0123456789ab"
	files, err := Files([]string{"spoke-1"}, TetherWorkload(ref))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{PlainDeployment, KustomizeBase + "/deployment.yaml"} {
		d, svc := sampleObjects(t, files, f)
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", f, len(d.Spec.Template.Spec.Containers))
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.Name != ContainerName || c.Image != ref {
			t.Errorf("%s: container %s image %s, want %s %s", f, c.Name, c.Image, ContainerName, ref)
		}
		if strings.Contains(string(files[f]), "nginx") {
			t.Errorf("%s still mentions nginx:\n%s", f, files[f])
		}
		if want := []string{"sample", "serve", "--listen", ":8080"}; !slices.Equal(c.Args, want) || c.Command != nil {
			t.Errorf("%s: command %q args %q, want args %q (the image's entrypoint is tether)", f, c.Command, c.Args, want)
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != ServerPort {
			t.Errorf("%s: ports %+v, want http=%d", f, c.Ports, ServerPort)
		}
		p := c.ReadinessProbe
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: readiness probe %+v, want GET /healthz on port http", f, p)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				env[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if env["POD_NAME"] != "metadata.name" || env["NODE_NAME"] != "spec.nodeName" {
			t.Errorf("%s: downward API env %v", f, env)
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != ConfigMapName {
			t.Errorf("%s: envFrom %+v, want ConfigMap %s", f, c.EnvFrom, ConfigMapName)
		}
		if svc.Name != AppName || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != ServicePort || svc.Spec.Ports[0].TargetPort.String() != "http" {
			t.Errorf("service %s ports %+v, want %d -> http", svc.Name, svc.Spec.Ports, ServicePort)
		}
	}
}

func TestNginxWorkloadAndBadWorkloads(t *testing.T) {
	files, err := Files([]string{"spoke-1"}, NginxWorkload)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := sampleObjects(t, files, PlainDeployment)
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "nginx:1.27" || c.Args != nil || c.Ports[0].ContainerPort != 80 || c.ReadinessProbe.HTTPGet.Path != "/" {
		t.Errorf("nginx workload: image %s args %q port %d probe %+v", c.Image, c.Args, c.Ports[0].ContainerPort, c.ReadinessProbe)
	}
	noProbe, err := Files(nil, Workload{Image: "example.com/x:1", Port: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := sampleObjects(t, noProbe, PlainDeployment); d.Spec.Template.Spec.Containers[0].ReadinessProbe != nil {
		t.Error("a workload without ReadyPath got a probe")
	}
	for _, w := range []Workload{
		{Image: "x:1"},
		{Image: "x:1", Port: 70000},
		{Image: "bad image", Port: 80},
		{Port: 80},
		{Image: "x:1", Port: 80, ReadyPath: "healthz"},
	} {
		if _, err := Files(nil, w); err == nil {
			t.Errorf("Files accepted workload %+v", w)
		}
	}
}

func TestSetImage(t *testing.T) {
	old := deployment(TetherWorkload("tether.local/tether:aaaaaaaaaaaa"))
	src := []byte("# keep me\n" + configMap("x") + "---\n" + old)
	out, changed, err := SetImage(src, "tether.local/tether:bbbbbbbbbbbb")
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	if !strings.Contains(string(out), "image: tether.local/tether:bbbbbbbbbbbb") || strings.Contains(string(out), "aaaaaaaaaaaa") {
		t.Fatalf("image not moved:\n%s", out)
	}
	if !strings.Contains(string(out), "# keep me") || !strings.Contains(string(out), "name: web-config") {
		t.Errorf("the rest of the file was lost:\n%s", out)
	}
	if diff := lineDiff([]byte(old), []byte(strings.SplitN(string(out), "---\n", 2)[1])); diff != 1 {
		t.Errorf("SetImage changed %d lines of the Deployment, want 1:\n%s", diff, out)
	}

	// Another repository's image (a user's commit), the same image, or no
	// Deployment at all: nothing changes.
	for _, c := range []struct{ content, image string }{
		{deployment(NginxWorkload), "tether.local/tether:bbbbbbbbbbbb"},
		{old, "tether.local/tether:aaaaaaaaaaaa"},
		{service, "tether.local/tether:bbbbbbbbbbbb"},
	} {
		out, changed, err := SetImage([]byte(c.content), c.image)
		if err != nil || changed || string(out) != c.content {
			t.Errorf("SetImage(%q) changed %v err %v:\n%s", c.image, changed, err, out)
		}
	}

	for ref, repo := range map[string]string{
		"tether.local/tether:abc":           "tether.local/tether",
		"tether.local/tether@sha256:0123":   "tether.local/tether",
		"localhost:5000/tether":             "localhost:5000/tether",
		"localhost:5000/tether:v1@sha256:0": "localhost:5000/tether",
		"nginx":                             "nginx",
	} {
		if got := imageRepository(ref); got != repo {
			t.Errorf("imageRepository(%q) = %q, want %q", ref, got, repo)
		}
	}
}

// Ensure seeds a new repository and, on an existing one, keeps every commit
// while adding and removing spokes' overlays and following tether's image:
// what a second `tether up` must do (it used to re-seed on kind, which put
// the sample back and undid `tether sample scale`).
func TestEnsureKeepsCommits(t *testing.T) {
	ctx := context.Background()
	srv, err := gitserver.New(t.TempDir(), gitserver.Options{Logger: slog.New(slog.DiscardHandler), AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); _ = srv.Close() })
	if err := srv.CreateRepo("sample"); err != nil { // what `git serve --repo sample` does
		t.Fatal(err)
	}
	url := gitserver.URL(hs.URL, "sample")
	spokes := []string{"spoke-1", "spoke-2"}
	w := TetherWorkload("tether.local/tether:aaaaaaaaaaaa")

	first, seeded, err := Ensure(ctx, url, spokes, w, "")
	if err != nil || !seeded {
		t.Fatalf("first Ensure: seeded %v, err %v", seeded, err)
	}
	want, _ := Files(spokes, w)
	if tree, head := checkout(t, url); head.Hash.String() != first || !equalTrees(tree, want) {
		t.Fatalf("seeded tree %v at %s, want %v at %s", sortedKeys(tree), head.Hash, sortedKeys(want), first)
	}

	scaled, err := Commit(ctx, url, "scale", Scale(PlainDeployment, 3), ScaleOverlay("spoke-1", 4), WriteFile("plain/extra.yaml", []byte(configMap("extra"))))
	if err != nil {
		t.Fatal(err)
	}
	again, seeded, err := Ensure(ctx, url, []string{"spoke-2", "spoke-1"}, w, "")
	if err != nil || seeded || again != scaled {
		t.Fatalf("second Ensure: head %s seeded %v err %v; want the scale commit %s untouched", again, seeded, err, scaled)
	}
	line := func(tree map[string][]byte, p, prefix string) string {
		for _, l := range strings.Split(string(tree[p]), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
				return l
			}
		}
		return ""
	}
	checkKept := func(tree map[string][]byte) {
		t.Helper()
		if got := line(tree, PlainDeployment, "replicas:"); got != "replicas: 3" {
			t.Errorf("plain Deployment %q, want the committed replicas: 3", got)
		}
		if got := line(tree, OverlayDir("spoke-1")+"/kustomization.yaml", "count:"); got != "count: 4" {
			t.Errorf("spoke-1 overlay %q, want the committed count: 4", got)
		}
		if _, ok := tree["plain/extra.yaml"]; !ok {
			t.Error("a committed file was removed")
		}
	}

	// A spoke joins and one leaves: their overlays follow, nothing else moves.
	moved, _, err := Ensure(ctx, url, []string{"spoke-1", "spoke-3"}, w, "")
	if err != nil || moved == scaled {
		t.Fatalf("Ensure with spoke-3 instead of spoke-2: head %s, err %v; want a new commit", moved, err)
	}
	tree, head := checkout(t, url)
	if head.ParentHashes[0].String() != scaled {
		t.Errorf("the update is not a child of the scale commit")
	}
	if got := tree[OverlayDir("spoke-3")+"/kustomization.yaml"]; string(got) != overlay("spoke-3") {
		t.Errorf("spoke-3's overlay:\n%s", got)
	}
	if _, ok := tree[OverlayDir("spoke-2")+"/kustomization.yaml"]; ok {
		t.Error("spoke-2's overlay is still there")
	}
	checkKept(tree)

	// A rebuilt tether image: both Deployments follow it, the rest stays.
	w2 := TetherWorkload("tether.local/tether:bbbbbbbbbbbb")
	if _, _, err := Ensure(ctx, url, []string{"spoke-1", "spoke-3"}, w2, ""); err != nil {
		t.Fatal(err)
	}
	tree, _ = checkout(t, url)
	for _, p := range []string{PlainDeployment, KustomizeBase + "/deployment.yaml"} {
		d, _ := sampleObjects(t, tree, p)
		if img := d.Spec.Template.Spec.Containers[0].Image; img != w2.Image {
			t.Errorf("%s runs %s, want %s", p, img, w2.Image)
		}
	}
	checkKept(tree)

	// An image a commit chose is the user's business.
	mine, err := Commit(ctx, url, "my image", WriteFile(PlainDeployment, []byte(deployment(Workload{Image: "registry.example/web:1", Port: 80}))))
	if err != nil {
		t.Fatal(err)
	}
	if head, _, err := Ensure(ctx, url, []string{"spoke-1", "spoke-3"}, w2, ""); err != nil || head != mine {
		t.Errorf("Ensure after a commit of another image: head %s err %v, want %s", head, err, mine)
	}
}

func TestServer(t *testing.T) {
	info := InfoFromEnv(func(k string) string {
		return map[string]string{ClusterEnv: "spoke-1", "POD_NAME": "web-abc", "NODE_NAME": "tether-spoke-1-control-plane"}[k]
	})
	h := Handler(info)
	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("GET", "/"); code != 200 || body != "hello from tether's sample on cluster spoke-1 (pod web-abc, node tether-spoke-1-control-plane)\n" {
		t.Errorf("GET /: %d %q", code, body)
	}
	if code, body := get("GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
	if code, _ := get("GET", "/nope"); code != 404 {
		t.Errorf("GET /nope: %d", code)
	}
	if code, _ := get("POST", "/"); code != 405 {
		t.Errorf("POST /: %d", code)
	}
	if got := (Info{}).Answer(); got != "hello from tether's sample on an unnamed cluster\n" {
		t.Errorf("no info: %q", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", Info{Cluster: "hub"}, nil, func(a string) { bound <- a }) }()
	var addr string
	select {
	case addr = <-bound:
	case err := <-done:
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "cluster hub") {
		t.Errorf("served %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if err := Serve(context.Background(), "not an address", Info{}, nil, nil); err == nil {
		t.Error("Serve on a bad address succeeded")
	}
}
