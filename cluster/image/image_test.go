package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const tinyMain = `package main

import (
	"fmt"
	"net"
)

func main() {
	// net pulls in the cgo resolver when cgo is on: a binary that links it
	// dynamically is what BuildBinary must avoid.
	_ = net.IPv4len
	fmt.Println("hello from tiny")
}
`

// tinyModule writes a one-file module and returns its folder. Compiling it is
// fast; compiling cmd/tether here would dominate the test run.
func tinyModule(t *testing.T, main string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/tiny\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tinyBinary builds the tiny module for linux on this machine's architecture.
func tinyBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tether")
	if err := BuildBinary(t.Context(), tinyModule(t, tinyMain), ".", out, "linux", runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	return out
}

// caFile gives Build a known CA bundle, so the tests do not depend on the
// build machine having one.
func caFile(t *testing.T) (string, []byte) {
	t.Helper()
	data := []byte("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
	p := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func TestBuildBinaryIsStaticAndRuns(t *testing.T) {
	bin := tinyBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary keeps its symbol table; -ldflags=-s should strip it")
	}
	if runtime.GOOS != "linux" {
		return
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "hello from tiny" {
		t.Errorf("output %q", got)
	}
}

func TestBuildBinaryOverridesCallerCgo(t *testing.T) {
	t.Setenv("CGO_ENABLED", "1")
	bin := tinyBinary(t)
	if _, err := checkBinary(bin, ""); err != nil {
		t.Fatal(err)
	}
}

func TestBuildBinaryReportsCompilerErrors(t *testing.T) {
	dir := tinyModule(t, "package main\n\nfunc main() { undefinedThing() }\n")
	err := BuildBinary(t.Context(), dir, ".", filepath.Join(t.TempDir(), "x"), "", "")
	if err == nil || !strings.Contains(err.Error(), "undefinedThing") {
		t.Fatalf("want the compiler's message, got %v", err)
	}
}

func TestBuildBinaryCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := BuildBinary(ctx, tinyModule(t, tinyMain), ".", filepath.Join(t.TempDir(), "x"), "", "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestBuildConfig(t *testing.T) {
	bin := tinyBinary(t)
	ca, _ := caFile(t)
	img, err := Build(bin, Options{CACertFile: ca, Source: "https://github.com/tether-dev/tether", Revision: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if !slices.Equal(c.Entrypoint, []string{"/ko-app/tether"}) || c.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" || c.WorkingDir != "/" {
		t.Errorf("user %q workdir %q", c.User, c.WorkingDir)
	}
	if !slices.Contains(c.Env, "HOME=/tmp") || !slices.ContainsFunc(c.Env, func(e string) bool {
		return strings.HasPrefix(e, "PATH=") && strings.Contains(e, "/ko-app")
	}) {
		t.Errorf("env %q", c.Env)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}
	want := map[string]string{
		"org.opencontainers.image.title":    "tether",
		"org.opencontainers.image.source":   "https://github.com/tether-dev/tether",
		"org.opencontainers.image.revision": "abc123",
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if _, ok := c.Labels["org.opencontainers.image.version"]; ok {
		t.Error("an unset version should leave no label")
	}
	if !cfg.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v, want the epoch", cfg.Created)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || len(cfg.History) != 1 {
		t.Errorf("diff IDs %d history %d, want one layer", len(cfg.RootFS.DiffIDs), len(cfg.History))
	}
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

func layerEntries(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = entry{h, data}
	}
}

func TestLayerContents(t *testing.T) {
	bin := tinyBinary(t)
	ca, caData := caFile(t)
	img, err := Build(bin, Options{CACertFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	entries := layerEntries(t, img)
	binData, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	app, ok := entries["ko-app/tether"]
	if !ok {
		t.Fatalf("no ko-app/tether in %v", keys(entries))
	}
	if app.hdr.Typeflag != tar.TypeReg || app.hdr.Mode != 0o755 || !bytes.Equal(app.data, binData) {
		t.Errorf("ko-app/tether: type %c mode %o, %d bytes (binary has %d)", app.hdr.Typeflag, app.hdr.Mode, len(app.data), len(binData))
	}
	if got, ok := entries["etc/ssl/certs/ca-certificates.crt"]; !ok || !bytes.Equal(got.data, caData) || got.hdr.Mode != 0o644 {
		t.Errorf("CA bundle missing or wrong in %v", keys(entries))
	}
	if tmp, ok := entries["tmp/"]; !ok || tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode != 0o1777 {
		t.Errorf("tmp/ missing or not world-writable in %v", keys(entries))
	}
	for n, e := range entries {
		if !e.hdr.ModTime.Equal(time.Unix(0, 0)) || e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s: mtime %v owner %d:%d, want the epoch and root", n, e.hdr.ModTime, e.hdr.Uid, e.hdr.Gid)
		}
	}
}

func TestLayerWithoutCABundle(t *testing.T) {
	img, err := Build(tinyBinary(t), Options{CACertFile: filepath.Join(t.TempDir(), "missing.crt")})
	if err != nil {
		t.Fatal(err)
	}
	for n := range layerEntries(t, img) {
		if strings.HasPrefix(n, "etc/") {
			t.Errorf("unexpected %s without a CA bundle", n)
		}
	}
}

func TestReproducibleDigest(t *testing.T) {
	bin := tinyBinary(t)
	ca, _ := caFile(t)
	digest := func(bin string, opts Options) string {
		t.Helper()
		opts.CACertFile = ca
		img, err := Build(bin, opts)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Digest(img)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := digest(bin, Options{})
	if !strings.HasPrefix(first, "sha256:") {
		t.Fatalf("digest %q", first)
	}
	// A copy with a fresh mtime and another mode: only content counts.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(copyPath, data, 0o700); err != nil {
		t.Fatal(err)
	}
	if second := digest(copyPath, Options{}); second != first {
		t.Errorf("rebuild gave %s, first build %s", second, first)
	}

	changed := filepath.Join(t.TempDir(), "changed")
	if err := os.WriteFile(changed, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if d := digest(changed, Options{}); d == first {
		t.Error("a different binary gave the same digest")
	}
	if d := digest(bin, Options{Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}); d == first {
		t.Error("a different creation time gave the same digest")
	}
}

func TestBuildRefusesWhatCannotRun(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(notELF, Options{}); err == nil || !strings.Contains(err.Error(), "ELF") {
		t.Errorf("non-ELF file: %v", err)
	}

	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if _, err := Build(tinyBinary(t), Options{Arch: other}); err == nil || !strings.Contains(err.Error(), "not "+other) {
		t.Errorf("architecture mismatch: %v", err)
	}

	// Any dynamically linked system binary will do.
	for _, p := range []string{"/bin/sh", "/usr/bin/env", "/bin/ls"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
		f.Close()
		if !dynamic {
			continue
		}
		if _, err := Build(p, Options{}); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
			t.Errorf("%s: %v", p, err)
		}
		return
	}
	t.Log("no dynamically linked binary found; that case is untested here")
}

func TestWriteArchive(t *testing.T) {
	ca, _ := caFile(t)
	img, err := Build(tinyBinary(t), Options{CACertFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Digest(img)
	if err != nil {
		t.Fatal(err)
	}
	defaultRef, err := Ref(img)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(defaultRef, DefaultRepository+":") || !strings.Contains(want, strings.TrimPrefix(defaultRef, DefaultRepository+":")) {
		t.Fatalf("ref %q does not come from digest %s", defaultRef, want)
	}

	for _, tc := range []struct{ ref, tag string }{
		{"", defaultRef},
		{"tether.local/tether:dev", "tether.local/tether:dev"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "tether.tar")
		if err := WriteArchive(img, tc.ref, path); err != nil {
			t.Fatal(err)
		}
		if names, _ := os.ReadDir(dir); len(names) != 1 {
			t.Errorf("left behind: %v", names)
		}

		var manifest []struct {
			Config   string
			RepoTags []string
			Layers   []string
		}
		if err := json.Unmarshal(archiveFile(t, path, "manifest.json"), &manifest); err != nil {
			t.Fatal(err)
		}
		if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{tc.tag}) || len(manifest[0].Layers) != 1 {
			t.Errorf("manifest.json %+v, want one image tagged %s with one layer", manifest, tc.tag)
		}

		tag, err := name.NewTag(tc.tag)
		if err != nil {
			t.Fatal(err)
		}
		back, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Digest(back)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("archive holds %s, built %s", got, want)
		}
	}

	if err := WriteArchive(img, "Not A Valid Ref!", filepath.Join(t.TempDir(), "x.tar")); err == nil {
		t.Error("an invalid reference was accepted")
	}
}

func archiveFile(t *testing.T, archive, name string) []byte {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s: %v", name, archive, err)
		}
		if h.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

func keys(m map[string]entry) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
