package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Options selects how a folder is rendered.
type Options struct {
	// Kustomize, when nil, lets Render pick Kustomize only if the folder holds
	// a kustomization file. When set, the folder must be a Kustomize folder
	// and the overrides are applied on top of it; asking for overrides on a
	// plain folder is an error rather than a silent no-op, because the user
	// would otherwise believe e.g. an image pin was in effect.
	Kustomize *KustomizeOptions
}

// sourced remembers which file produced an object so that duplicate errors
// can point at both places.
type sourced struct {
	obj  *unstructured.Unstructured
	file string
}

// Render returns the Kubernetes objects defined by the folder path inside the
// checkout root, in a deterministic order.
//
// path is relative to root ("" or "." is the root itself). It may not climb
// out of root, neither with ".." nor through a symlink.
//
// On failure no objects are returned, only an error joining one *RenderError
// per problem found across all files (see RenderErrors): a partial set of
// objects would make the sync engine prune whatever lives in the broken file.
func Render(root, path string, opts Options) ([]*unstructured.Unstructured, error) {
	objs, err := RenderObjects(root, path, opts)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.Object
	}
	return out, nil
}

// Object is a rendered object and the file it came from, relative to the
// checkout root (for Kustomize output, the kustomization file), so a later
// refusal by the API server can still point at a file in Git.
type Object struct {
	Object *unstructured.Unstructured
	File   string
}

// RenderObjects is Render with each object's source file.
func RenderObjects(root, path string, opts Options) ([]Object, error) {
	rootReal, appReal, appRel, err := resolveApp(root, path)
	if err != nil {
		return nil, err
	}

	var objs []sourced
	if kfile := findKustomization(appReal); kfile != "" {
		objs, err = renderKustomize(rootReal, appReal, joinRel(appRel, kfile), opts.Kustomize)
	} else if opts.Kustomize != nil {
		return nil, &RenderError{File: appRel, Msg: "Kustomize options given but the folder has no kustomization.yaml, kustomization.yml or Kustomization"}
	} else {
		objs, err = renderPlain(rootReal, appReal)
	}
	if err != nil {
		return nil, err
	}
	if err := checkDuplicates(objs); err != nil {
		return nil, err
	}

	out := make([]Object, len(objs))
	for i, s := range objs {
		out[i] = Object{Object: s.obj, File: s.file}
	}
	return out, nil
}

// resolveApp validates path against root and returns the symlink-free root,
// the symlink-free application folder and that folder's slash-separated path
// relative to the root (for messages).
func resolveApp(root, path string) (rootReal, appReal, appRel string, err error) {
	fail := func(format string, args ...any) (string, string, string, error) {
		return "", "", "", &RenderError{File: filepath.ToSlash(path), Msg: fmt.Sprintf(format, args...)}
	}
	if root == "" {
		return fail("empty repository root")
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return fail("repository root: %v", err)
	}
	if rootReal, err = filepath.EvalSymlinks(rootAbs); err != nil {
		return fail("repository root: %v", err)
	}

	native := filepath.FromSlash(path)
	if filepath.IsAbs(native) || strings.HasPrefix(path, "/") {
		return fail("path must be relative to the repository root")
	}
	clean := filepath.Clean(native)
	if clean != "." && !filepath.IsLocal(clean) {
		return fail("path escapes the repository root")
	}

	appReal, err = filepath.EvalSymlinks(filepath.Join(rootReal, clean))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fail("no such directory in the repository")
		}
		return fail("%v", err)
	}
	rel, ok := within(rootReal, appReal)
	if !ok {
		return fail("path resolves outside the repository root through a symlink")
	}
	fi, err := os.Stat(appReal)
	if err != nil {
		return fail("%v", err)
	}
	if !fi.IsDir() {
		return fail("not a directory")
	}
	return rootReal, appReal, rel, nil
}

// within reports whether p is root or below it, and p relative to root in
// slash form. Both must already be absolute and symlink-free.
func within(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return "", false
	}
	if rel != "." && !filepath.IsLocal(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

func joinRel(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	return dir + "/" + name
}

// checkDuplicates rejects two objects with the same identity: applying both
// would make the last one silently win and the diff flap between them.
// The namespace is compared as written, since whether a kind is namespaced is
// only known to the cluster.
func checkDuplicates(objs []sourced) error {
	type key struct {
		gk        schema.GroupKind
		namespace string
		name      string
	}
	seen := make(map[key]string, len(objs))
	var errs []error
	for _, s := range objs {
		gk := s.obj.GroupVersionKind().GroupKind()
		k := key{gk: gk, namespace: s.obj.GetNamespace(), name: s.obj.GetName()}
		if first, dup := seen[k]; dup {
			id := gk.String() + " " + k.name
			if k.namespace != "" {
				id = gk.String() + " " + k.namespace + "/" + k.name
			}
			errs = append(errs, &RenderError{File: s.file, Msg: fmt.Sprintf("duplicate object %s: also defined in %s", id, first)})
			continue
		}
		seen[k] = s.file
	}
	return errors.Join(errs...)
}

// checkObject enforces the fields every object needs before it can be
// identified, diffed or applied. what names the object for the message.
func checkObject(m map[string]any, what string) string {
	if s, _ := m["apiVersion"].(string); s == "" {
		return what + " has no apiVersion"
	}
	kind, _ := m["kind"].(string)
	if kind == "" {
		return what + " has no kind"
	}
	md, _ := m["metadata"].(map[string]any)
	if name, _ := md["name"].(string); name == "" {
		return what + " (kind " + kind + ") has no metadata.name"
	}
	return ""
}
