package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// KustomizeOptions are per-Application overrides applied on top of the
// folder's own kustomization, like Argo CD's spec.source.kustomize.
type KustomizeOptions struct {
	NamePrefix string
	NameSuffix string
	// Namespace sets metadata.namespace of every namespaced object.
	Namespace string
	// CommonLabels are added to every object and, as with kustomize's
	// commonLabels, to selectors and pod templates.
	CommonLabels map[string]string
	// Images are overrides in Argo CD's syntax: "name=newName:tag",
	// "name=newName@sha256:…", "name:tag" or "name@sha256:…".
	Images []string
}

func (o *KustomizeOptions) isZero() bool {
	return o == nil || (o.NamePrefix == "" && o.NameSuffix == "" && o.Namespace == "" &&
		len(o.CommonLabels) == 0 && len(o.Images) == 0)
}

// findKustomization returns the kustomization file name in dir, or "".
func findKustomization(dir string) string {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
			return name
		}
	}
	return ""
}

// renderKustomize builds appDir with krusty. kfileRel (the kustomization
// file relative to the root) is where errors are reported, as Kustomize's own
// messages rarely say which kustomization they came from.
//
// Overrides are applied through a throw-away overlay kustomization in a
// temporary directory whose only resource is appDir. That is what
// `kustomize edit set …` would produce, so the semantics are exactly
// Kustomize's, but unlike Argo CD (which runs `kustomize edit` inside the
// checkout) it never writes to the checkout, which may be shared by several
// Applications rendering concurrently and must stay identical to the commit.
func renderKustomize(rootReal, appDir, kfileRel string, ko *KustomizeOptions) ([]sourced, error) {
	fail := func(msg string) error { return &RenderError{File: kfileRel, Msg: msg} }

	target := appDir
	roots := []string{rootReal}
	var tmpReal string
	if !ko.isZero() {
		tmp, err := os.MkdirTemp("", "tether-render-")
		if err != nil {
			return nil, fail(fmt.Sprintf("kustomize overlay: %v", err))
		}
		defer os.RemoveAll(tmp)
		if tmpReal, err = filepath.EvalSymlinks(tmp); err != nil {
			return nil, fail(fmt.Sprintf("kustomize overlay: %v", err))
		}
		overlay, err := overlayKustomization(tmpReal, appDir, ko)
		if err != nil {
			return nil, fail(err.Error())
		}
		if err := os.WriteFile(filepath.Join(tmpReal, konfig.DefaultKustomizationFileName()), overlay, 0o600); err != nil {
			return nil, fail(fmt.Sprintf("kustomize overlay: %v", err))
		}
		target = tmpReal
		roots = append(roots, tmpReal)
	}

	// Kustomize's LoadRestrictionsRootOnly only keeps plain files inside
	// their kustomization's folder; a base ("../../x") may be anywhere on
	// disk. The fence extends the restriction to every read.
	fsys := fencedFS{FileSystem: filesys.MakeFsOnDisk(), roots: roots}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, target)
	if err != nil {
		return nil, fail("kustomize: " + relativize(err.Error(), rootReal, tmpReal))
	}

	var objs []sourced
	var errs []error
	for i, res := range resMap.Resources() {
		js, err := res.MarshalJSON()
		if err != nil {
			errs = append(errs, fail(fmt.Sprintf("kustomize output object %d: %v", i+1, err)))
			continue
		}
		// util/json keeps integers as int64, which unstructured requires.
		var m map[string]any
		if err := utiljson.Unmarshal(js, &m); err != nil {
			errs = append(errs, fail(fmt.Sprintf("kustomize output object %d: %v", i+1, err)))
			continue
		}
		if msg := checkObject(m, fmt.Sprintf("kustomize output object %d", i+1)); msg != "" {
			errs = append(errs, fail(msg))
			continue
		}
		objs = append(objs, sourced{obj: &unstructured.Unstructured{Object: m}, file: kfileRel})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

func overlayKustomization(overlayDir, appDir string, ko *KustomizeOptions) ([]byte, error) {
	// Kustomize refuses absolute resource paths.
	base, err := filepath.Rel(overlayDir, appDir)
	if err != nil {
		return nil, fmt.Errorf("kustomize overlay: %w", err)
	}
	k := types.Kustomization{
		TypeMeta: types.TypeMeta{
			APIVersion: types.KustomizationVersion,
			Kind:       types.KustomizationKind,
		},
		Resources:  []string{filepath.ToSlash(base)},
		NamePrefix: ko.NamePrefix,
		NameSuffix: ko.NameSuffix,
		Namespace:  ko.Namespace,
	}
	if len(ko.CommonLabels) > 0 {
		k.Labels = []types.Label{{Pairs: ko.CommonLabels, IncludeSelectors: true}}
	}
	for _, s := range ko.Images {
		img, err := parseImage(s)
		if err != nil {
			return nil, err
		}
		k.Images = append(k.Images, img)
	}
	return yaml.Marshal(k)
}

// parseImage reads an image override in Argo CD's syntax.
func parseImage(s string) (types.Image, error) {
	name, ref, renamed := strings.Cut(s, "=")
	if !renamed {
		ref = s
	}
	var img types.Image
	if before, digest, ok := strings.Cut(ref, "@"); ok {
		ref, img.Digest = before, digest
	}
	// A colon after the last slash is a tag; one before it is a registry port.
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, img.NewTag = ref[:i], ref[i+1:]
	}
	if renamed {
		img.Name, img.NewName = name, ref
	} else {
		img.Name = ref
	}
	if img.Name == "" || (renamed && img.NewName == "") {
		return types.Image{}, fmt.Errorf("invalid image override %q: missing image name", s)
	}
	if img.NewName == "" && img.NewTag == "" && img.Digest == "" {
		return types.Image{}, fmt.Errorf("invalid image override %q: no new name, tag or digest", s)
	}
	return img, nil
}

// relativize strips the agent's local directories from Kustomize's messages:
// the user knows the repository, not where the agent checked it out.
func relativize(msg, rootReal, tmpReal string) string {
	var pairs []string
	if tmpReal != "" {
		pairs = append(pairs, tmpReal+string(filepath.Separator), "", tmpReal, "<overrides>")
	}
	pairs = append(pairs, rootReal+string(filepath.Separator), "")
	return strings.NewReplacer(pairs...).Replace(msg)
}

// fencedFS is a kustomize file system that refuses to touch anything outside
// roots (all symlink-free) and refuses to write at all: rendering is read-only.
type fencedFS struct {
	filesys.FileSystem
	roots []string
}

func (f fencedFS) check(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	resolved := resolveExisting(abs)
	for _, r := range f.roots {
		if _, ok := within(r, resolved); ok {
			return nil
		}
	}
	// Name the path relative to the repository: an absolute path would tell
	// the user about the agent's disk, not about their repository.
	if rel, err := filepath.Rel(f.roots[0], resolved); err == nil {
		return fmt.Errorf("%s is outside the repository", filepath.ToSlash(rel))
	}
	return fmt.Errorf("%s is outside the repository", path)
}

// resolveExisting evaluates symlinks in the longest existing prefix of abs, so
// a path that does not exist yet is still judged by where it would land.
func resolveExisting(abs string) string {
	suffix := ""
	p := abs
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, suffix)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs
		}
		suffix = filepath.Join(filepath.Base(p), suffix)
		p = parent
	}
}

var errReadOnly = errors.New("rendering does not write files")

func (fencedFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (fencedFS) Mkdir(string) error                  { return errReadOnly }
func (fencedFS) MkdirAll(string) error               { return errReadOnly }
func (fencedFS) RemoveAll(string) error              { return errReadOnly }
func (fencedFS) WriteFile(string, []byte) error      { return errReadOnly }

func (f fencedFS) Open(path string) (filesys.File, error) {
	if err := f.check(path); err != nil {
		return nil, err
	}
	return f.FileSystem.Open(path)
}

func (f fencedFS) IsDir(path string) bool {
	return f.check(path) == nil && f.FileSystem.IsDir(path)
}

func (f fencedFS) ReadDir(path string) ([]string, error) {
	if err := f.check(path); err != nil {
		return nil, err
	}
	return f.FileSystem.ReadDir(path)
}

func (f fencedFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if err := f.check(path); err != nil {
		return "", "", err
	}
	return f.FileSystem.CleanedAbs(path)
}

func (f fencedFS) Exists(path string) bool {
	return f.check(path) == nil && f.FileSystem.Exists(path)
}

func (f fencedFS) Glob(pattern string) ([]string, error) {
	if err := f.check(filepath.Dir(pattern)); err != nil {
		return nil, err
	}
	matches, err := f.FileSystem.Glob(pattern)
	if err != nil {
		return nil, err
	}
	kept := matches[:0]
	for _, m := range matches {
		if f.check(m) == nil {
			kept = append(kept, m)
		}
	}
	sort.Strings(kept)
	return kept, nil
}

func (f fencedFS) ReadFile(path string) ([]byte, error) {
	if err := f.check(path); err != nil {
		return nil, err
	}
	return f.FileSystem.ReadFile(path)
}

func (f fencedFS) Walk(path string, walkFn filepath.WalkFunc) error {
	if err := f.check(path); err != nil {
		return err
	}
	return f.FileSystem.Walk(path, walkFn)
}
