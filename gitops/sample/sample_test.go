package sample

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tether-dev/tether/gitops/gitserver"
)

func TestFiles(t *testing.T) {
	a, err := Files([]string{"spoke-b", "spoke-a", "spoke-a"}, Workload{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Files([]string{"spoke-a", "spoke-b"}, Workload{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("Files depends on order/duplicates: %d vs %d files", len(a), len(b))
	}
	for p, c := range a {
		if !bytes.Equal(c, b[p]) {
			t.Fatalf("%s differs between calls", p)
		}
	}
	want := []string{
		"README.md",
		"kustomize/base/configmap.yaml",
		"kustomize/base/deployment.yaml",
		"kustomize/base/kustomization.yaml",
		"kustomize/base/service.yaml",
		"kustomize/overlays/spoke-a/kustomization.yaml",
		"kustomize/overlays/spoke-b/kustomization.yaml",
		"plain/config-and-service.yaml",
		"plain/deployment.yaml",
	}
	if got := sortedKeys(a); !slices.Equal(got, want) {
		t.Fatalf("paths = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "Spoke", "a/b", "../x", "-a", strings.Repeat("a", 64)} {
		if _, err := Files([]string{bad}, Workload{}); err == nil {
			t.Errorf("Files(%q) accepted an invalid spoke name", bad)
		}
	}

	var d appsv1.Deployment
	if err := sigsyaml.UnmarshalStrict(a[PlainDeployment], &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != AppName || *d.Spec.Replicas != Replicas || d.Spec.Template.Spec.Containers[0].Image != DefaultImage {
		t.Fatalf("deployment = %s replicas %d image %s", d.Name, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
	}
	docs := strings.Split(string(a[PlainConfigAndService]), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%s has %d documents, want 2", PlainConfigAndService, len(docs))
	}
	var cm corev1.ConfigMap
	var svc corev1.Service
	if err := sigsyaml.UnmarshalStrict([]byte(docs[0]), &cm); err != nil || cm.Name != ConfigMapName {
		t.Fatalf("configmap %q: %v", cm.Name, err)
	}
	if err := sigsyaml.UnmarshalStrict([]byte(docs[1]), &svc); err != nil || svc.Name != AppName || svc.Spec.Ports[0].Port != 80 {
		t.Fatalf("service %q: %v", svc.Name, err)
	}
}

// TestKustomizeRenders builds the base and every overlay with Kustomize, the
// way the sync engine will.
func TestKustomizeRenders(t *testing.T) {
	files, err := Files([]string{"east", "west"}, Workload{})
	if err != nil {
		t.Fatal(err)
	}
	mem := filesys.MakeFsInMemory()
	for p, c := range files {
		if err := mem.WriteFile("/"+p, c); err != nil {
			t.Fatal(err)
		}
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())

	base, err := k.Run(mem, "/"+KustomizeBase)
	if err != nil {
		t.Fatal(err)
	}
	if base.Size() != 3 {
		t.Fatalf("base renders %d objects, want 3", base.Size())
	}

	for _, spoke := range []string{"east", "west"} {
		rm, err := k.Run(mem, "/"+OverlayDir(spoke))
		if err != nil {
			t.Fatalf("overlay %s: %v", spoke, err)
		}
		out, err := rm.AsYaml()
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, r := range rm.Resources() {
			kinds = append(kinds, r.GetKind())
			if r.GetLabels()[SpokeLabel] != spoke {
				t.Errorf("%s %s lacks label %s=%s", r.GetKind(), r.GetName(), SpokeLabel, spoke)
			}
			switch r.GetKind() {
			case "Deployment":
				var d appsv1.Deployment
				y, _ := r.AsYAML()
				if err := sigsyaml.Unmarshal(y, &d); err != nil {
					t.Fatal(err)
				}
				if *d.Spec.Replicas != OverlayReplicas {
					t.Errorf("%s replicas = %d", spoke, *d.Spec.Replicas)
				}
				if _, ok := d.Spec.Selector.MatchLabels[SpokeLabel]; ok {
					t.Errorf("%s: spoke label leaked into the immutable selector", spoke)
				}
			case "ConfigMap":
				if data := r.GetDataMap(); data["VARIANT"] != spoke || data[ClusterEnv] != spoke {
					t.Errorf("%s ConfigMap VARIANT = %q, %s = %q", spoke, data["VARIANT"], ClusterEnv, data[ClusterEnv])
				}
			}
		}
		sort.Strings(kinds)
		if !slices.Equal(kinds, []string{"ConfigMap", "Deployment", "Service"}) {
			t.Fatalf("overlay %s renders %v\n%s", spoke, kinds, out)
		}
	}
}

func TestSetReplicas(t *testing.T) {
	src := []byte("# the web tier\n" + deployment(TetherWorkload("")))
	out, err := SetReplicas(src, 5)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := sigsyaml.UnmarshalStrict(out, &d); err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 5 || d.Spec.Template.Spec.Containers[0].Image != DefaultImage {
		t.Fatalf("after SetReplicas: replicas %d image %s", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
	}
	if !strings.Contains(string(out), "# the web tier") {
		t.Errorf("comment lost:\n%s", out)
	}
	if diff := lineDiff(src, out); diff != 1 {
		t.Errorf("SetReplicas changed %d lines, want 1:\n%s", diff, out)
	}

	multi := []byte(configMap("x") + "---\n" + deployment(NginxWorkload))
	out, err = SetReplicas(multi, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "name: web-config") || !strings.Contains(string(out), "replicas: 0") {
		t.Fatalf("multi-document edit lost content:\n%s", out)
	}
	if _, err := SetReplicas([]byte(service), 1); err == nil {
		t.Fatal("SetReplicas on a Service succeeded")
	}
	if _, err := SetReplicas([]byte("kind: [oops"), 1); err == nil {
		t.Fatal("SetReplicas on broken YAML succeeded")
	}
}

func lineDiff(a, b []byte) int {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	n := 0
	for i := range max(len(al), len(bl)) {
		if i >= len(al) || i >= len(bl) || al[i] != bl[i] {
			n++
		}
	}
	return n
}

func TestSeedAndCommit(t *testing.T) {
	ctx := context.Background()
	var pushes int
	events := make(chan gitserver.PushEvent, 20)
	srv, err := gitserver.New(t.TempDir(), gitserver.Options{
		Logger:     slog.New(slog.DiscardHandler),
		AutoCreate: true,
		OnPush:     func(ev gitserver.PushEvent) { events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); _ = srv.Close() })
	drain := func() {
		for {
			select {
			case <-events:
				pushes++
			default:
				return
			}
		}
	}

	// Seeding into a repository that does not exist yet (AutoCreate) and
	// into one created empty both work.
	if err := srv.CreateRepo("created"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"created", "auto"} {
		drain()
		pushes = 0
		url := gitserver.URL(hs.URL, name)
		spokes := []string{"spoke-1", "spoke-2"}
		first, err := Seed(ctx, url, spokes, Workload{}, "Workbench <wb@tether.dev>")
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		want, _ := Files(spokes, Workload{})
		tree, head := checkout(t, url)
		if head.Hash.String() != first || head.Author.Email != "wb@tether.dev" {
			t.Fatalf("head = %s by %s, want %s", head.Hash, head.Author.Email, first)
		}
		if !equalTrees(tree, want) {
			t.Fatalf("seeded tree = %v, want %v", sortedKeys(tree), sortedKeys(want))
		}
		drain()
		if pushes != 1 {
			t.Fatalf("%d push events after seeding, want 1", pushes)
		}

		again, err := Seed(ctx, url, []string{"spoke-2", "spoke-1"}, Workload{}, "")
		if err != nil {
			t.Fatal(err)
		}
		drain()
		if again != first || pushes != 1 {
			t.Fatalf("re-seed: head %s (was %s), %d pushes; want no new commit", again, first, pushes)
		}

		scaled, err := Commit(ctx, url, "scale web to 3", Scale(PlainDeployment, 3))
		if err != nil {
			t.Fatal(err)
		}
		tree, head = checkout(t, url)
		if scaled == first || head.Hash.String() != scaled || head.ParentHashes[0].String() != first || head.Message != "scale web to 3" {
			t.Fatalf("after scale: head %s parent %v message %q", head.Hash, head.ParentHashes, head.Message)
		}
		var d appsv1.Deployment
		if err := sigsyaml.Unmarshal(tree[PlainDeployment], &d); err != nil || *d.Spec.Replicas != 3 {
			t.Fatalf("replicas after scale: %v %v", d.Spec.Replicas, err)
		}

		// The same edit again changes nothing and moves nothing.
		if same, err := Commit(ctx, url, "scale web to 3 again", Scale(PlainDeployment, 3)); err != nil || same != scaled {
			t.Fatalf("no-op commit: %s, %v; want %s", same, err, scaled)
		}

		broken, err := Commit(ctx, url, "break things", WriteFile("plain/broken.yaml", []byte("kind: [oops\n")), RemoveFile(PlainConfigAndService))
		if err != nil {
			t.Fatal(err)
		}
		tree, _ = checkout(t, url)
		if _, ok := tree["plain/broken.yaml"]; !ok || tree[PlainConfigAndService] != nil {
			t.Fatalf("after break: files %v", sortedKeys(tree))
		}

		// Seeding restores the sample: broken file gone, spoke-2's overlay
		// dropped, the other files back to their seeded content.
		restored, err := Seed(ctx, url, []string{"spoke-1"}, Workload{}, "")
		if err != nil {
			t.Fatal(err)
		}
		want, _ = Files([]string{"spoke-1"}, Workload{})
		tree, head = checkout(t, url)
		if restored == broken || head.Hash.String() != restored || !equalTrees(tree, want) {
			t.Fatalf("after re-seed: head %s, files %v", head.Hash, sortedKeys(tree))
		}
	}
}

// checkout clones url and returns its files and head commit.
func checkout(t *testing.T, url string) (map[string][]byte, *object.Commit) {
	t.Helper()
	repo, err := git.Clone(memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: url, ReferenceName: plumbing.Main})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(ref.Hash())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err = tree.Files().ForEach(func(f *object.File) error {
		s, err := f.Contents()
		files[f.Name] = []byte(s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, c
}

func equalTrees(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for p, c := range a {
		if !bytes.Equal(c, b[p]) {
			return false
		}
	}
	return true
}
