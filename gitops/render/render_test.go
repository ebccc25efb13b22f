package render

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// writeTree creates files (slash paths relative to the returned root).
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		id := o.GetKind() + "/" + o.GetName()
		if ns := o.GetNamespace(); ns != "" {
			id = o.GetKind() + "/" + ns + "/" + o.GetName()
		}
		out = append(out, id)
	}
	return out
}

func cm(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  k: v\n"
}

func TestRenderPlainDirectory(t *testing.T) {
	root := writeTree(t, map[string]string{
		"app/a.yaml": cm("cm-a"),
		"app/b/c.yml": "---\n# leading comment only\n---\n" +
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  replicas: 2\n" +
			"---\n\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: prod\n" +
			"--- # trailing\n",
		"app/b/d.json":   `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"a":"b"}}`,
		"app/b/e/f.yaml": cm("nested"),
		"app/list.yaml": "apiVersion: v1\nkind: List\nitems:\n" +
			"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: list-1\n" +
			"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: list-2\n",
		"app/list.json":           `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa"}}]}`,
		"app/.hidden/x.yaml":      cm("hidden"),
		"app/.git/config.yaml":    cm("git"),
		"app/.argocd-source.yaml": cm("dotfile"),
		"app/README.md":           "# not a manifest\n",
		"app/notes.txt":           "kind: nope\n",
		"other/ignored.yaml":      cm("other"),
	})

	objs, err := Render(root, "app", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ConfigMap/cm-a",
		"Deployment/prod/web",
		"Service/prod/web",
		"Secret/s",
		"ConfigMap/nested",
		"ServiceAccount/sa",
		"ConfigMap/list-1",
		"ConfigMap/list-2",
	}
	if got := ids(objs); !reflect.DeepEqual(got, want) {
		t.Fatalf("objects:\n got %v\nwant %v", got, want)
	}
	// Integers must be int64 or unstructured helpers and deep copies panic.
	if r, ok, err := unstructured.NestedInt64(objs[1].Object, "spec", "replicas"); err != nil || !ok || r != 2 {
		t.Fatalf("replicas = %v %v %v", r, ok, err)
	}
	_ = objs[1].DeepCopy()

	for i := 0; i < 3; i++ {
		again, err := Render(root, "./app/", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, objs) {
			t.Fatal("render is not deterministic")
		}
	}
}

func TestRenderRootPath(t *testing.T) {
	root := writeTree(t, map[string]string{"x.yaml": cm("x"), "sub/y.yaml": cm("why")})
	for _, p := range []string{"", ".", "sub/.."} {
		objs, err := Render(root, p, Options{})
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		if got := ids(objs); !reflect.DeepEqual(got, []string{"ConfigMap/why", "ConfigMap/x"}) {
			t.Fatalf("%q: %v", p, got)
		}
	}
}

func TestRenderEmptyDirectory(t *testing.T) {
	root := writeTree(t, map[string]string{"app/only-comments.yaml": "# nothing\n---\n---\n", "app/null.yaml": "~\n"})
	objs, err := Render(root, "app", Options{})
	if err != nil || len(objs) != 0 {
		t.Fatalf("got %v, %v", objs, err)
	}
}

func TestRenderYAMLSyntaxErrorLine(t *testing.T) {
	root := writeTree(t, map[string]string{
		"plain/deployment.yaml": "" +
			"apiVersion: v1\n" + // 1
			"kind: ConfigMap\n" + // 2
			"metadata:\n" + // 3
			"  name: ok\n" + // 4
			"---\n" + // 5
			"apiVersion: apps/v1\n" + // 6
			"kind: Deployment: broken\n" + // 7
			"metadata:\n" + // 8
			"  name: web\n", // 9
	})
	objs, err := Render(root, "plain", Options{})
	if objs != nil {
		t.Fatalf("objects returned despite error: %v", ids(objs))
	}
	const want = "plain/deployment.yaml:7: yaml: line 7: mapping values are not allowed in this context"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
	var re *RenderError
	if !errors.As(err, &re) {
		t.Fatalf("not a *RenderError: %T", err)
	}
	if re.File != "plain/deployment.yaml" || re.Line != 7 {
		t.Fatalf("got %+v", re)
	}
}

func TestRenderYAMLErrorsAreFileLines(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{
			name:    "after comments and blank documents",
			content: "# header\n---\n\n---\n# c\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: [\n",
			want:    "f.yaml:10: yaml: line 10: did not find expected node content",
		},
		{
			name:    "duplicate key",
			content: cm("a") + "---\napiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata:\n  name: b\n",
			want:    `f.yaml:10: yaml: unmarshal errors: line 10: key "kind" already set in map`,
		},
		{
			name:    "error without a line starts at the document",
			content: cm("a") + "---\n\tkind: x\n",
			want:    "f.yaml:8: yaml: found character that cannot start any token",
		},
		{
			name:    "content on the separator line",
			content: cm("a") + "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}\n",
			want:    "f.yaml:7: yaml: line 7: did not find expected ',' or '}'",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{"f.yaml": tc.content})
			_, err := Render(root, "", Options{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestRenderInvalidObjects(t *testing.T) {
	root := writeTree(t, map[string]string{
		"plain/svc.yaml":    "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: v1\nmetadata:\n  name: b\n",
		"plain/noname.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n",
		"plain/noapi.yaml":  "kind: ConfigMap\nmetadata:\n  name: a\n",
		"plain/scalar.yaml": "just a string\n",
		"plain/list.yaml":   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: ok}\n- apiVersion: v1\n  metadata: {name: x}\n",
		"plain/good.yaml":   cm("good"),
	})
	objs, err := Render(root, "plain", Options{})
	if objs != nil {
		t.Fatalf("objects returned despite errors: %v", ids(objs))
	}
	var got []string
	for _, re := range RenderErrors(err) {
		got = append(got, re.Error())
	}
	want := []string{
		"plain/list.yaml: document 1 item 2 has no kind",
		"plain/noapi.yaml: document 1 has no apiVersion",
		"plain/noname.yaml: document 1 (kind ConfigMap) has no metadata.name",
		"plain/scalar.yaml: document 1 is not an object",
		"plain/svc.yaml: document 2 has no kind",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}
}

func TestRenderCollectsErrorsAcrossFiles(t *testing.T) {
	root := writeTree(t, map[string]string{
		"a.yaml": "a: b: c\n",
		"b.yaml": "apiVersion: v1\nmetadata: {name: x}\n",
	})
	_, err := Render(root, "", Options{})
	errs := RenderErrors(err)
	if len(errs) != 2 || errs[0].File != "a.yaml" || errs[0].Line != 1 || errs[1].File != "b.yaml" {
		t.Fatalf("got %v", err)
	}
}

func TestRenderDuplicates(t *testing.T) {
	root := writeTree(t, map[string]string{
		"app/a.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n",
		"app/b/b.yaml": "" +
			// Same identity through another version: still the same object.
			"apiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n---\n" +
			// Same name elsewhere or of another kind is fine.
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: dev}\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: prod}\n",
	})
	_, err := Render(root, "app", Options{})
	const want = "app/b/b.yaml: duplicate object Deployment.apps prod/web: also defined in app/a.yaml"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}

	root = writeTree(t, map[string]string{"x.yaml": cm("same") + "---\n" + cm("same")})
	_, err = Render(root, "", Options{})
	if want := "x.yaml: duplicate object ConfigMap same: also defined in x.yaml"; err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
}

func TestRenderRejectsEscapes(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "repo")
	outside := filepath.Join(parent, "outside")
	for _, d := range []string{filepath.Join(root, "app"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte(cm("stolen")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "app", "ok.yaml"), []byte(cm("ok")), 0o644); err != nil {
		t.Fatal(err)
	}
	mustLink := func(target, link string) {
		t.Helper()
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	mustLink(outside, filepath.Join(root, "escape"))
	mustLink("../app", filepath.Join(root, "app", "loop"))
	mustLink(filepath.Join(root, "app"), filepath.Join(root, "inside"))

	cases := []struct{ path, want string }{
		{"..", "..: path escapes the repository root"},
		{"../outside", "../outside: path escapes the repository root"},
		{"app/../../outside", "app/../../outside: path escapes the repository root"},
		{"/etc", "/etc: path must be relative to the repository root"},
		{"escape", "escape: path resolves outside the repository root through a symlink"},
		{"missing", "missing: no such directory in the repository"},
		{"app/ok.yaml", "app/ok.yaml: not a directory"},
	}
	for _, tc := range cases {
		objs, err := Render(root, tc.path, Options{})
		if objs != nil || err == nil || err.Error() != tc.want {
			t.Errorf("Render(%q) = %v, %v; want error %q", tc.path, ids(objs), err, tc.want)
		}
	}

	// A symlink to a folder inside the repository is fine and reported by
	// its real location; the symlinked directory inside it is not followed.
	objs, err := Render(root, "inside", Options{})
	if err != nil || !reflect.DeepEqual(ids(objs), []string{"ConfigMap/ok"}) {
		t.Fatalf("inside: %v %v", ids(objs), err)
	}

	// A manifest symlinked from outside is refused, not read.
	mustLink(filepath.Join(outside, "secret.yaml"), filepath.Join(root, "app", "z.yaml"))
	_, err = Render(root, "app", Options{})
	if want := "app/z.yaml: symlink points outside the repository"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestRenderSymlinkedManifestInsideRepo(t *testing.T) {
	root := writeTree(t, map[string]string{"shared/cm.yaml": cm("shared"), "app/own.yaml": cm("own")})
	if err := os.Symlink("../shared/cm.yaml", filepath.Join(root, "app", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	objs, err := Render(root, "app", Options{})
	if err != nil || !reflect.DeepEqual(ids(objs), []string{"ConfigMap/shared", "ConfigMap/own"}) {
		t.Fatalf("got %v %v", ids(objs), err)
	}
}

func TestSplitDocuments(t *testing.T) {
	docs := splitDocuments([]byte("a: 1\n---\r\nb: 2\n--- # c\n---x: 3\n--- {c: 4}\n"))
	var got []string
	for _, d := range docs {
		got = append(got, strings.TrimSpace(string(d.text))+"@"+string(rune('0'+d.line)))
	}
	want := []string{"a: 1@1", "b: 2@3", "---x: 3@5", "{c: 4}@6"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestRenderErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    RenderError
		want string
	}{
		{RenderError{File: "a.yaml", Line: 3, Msg: "m"}, "a.yaml:3: m"},
		{RenderError{File: "a.yaml", Msg: "m"}, "a.yaml: m"},
		{RenderError{Msg: "m"}, "m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
	if RenderErrors(nil) != nil {
		t.Error("RenderErrors(nil) != nil")
	}
	if got := RenderErrors(errors.New("x")); len(got) != 1 || got[0].Msg != "x" {
		t.Errorf("got %v", got)
	}
}
