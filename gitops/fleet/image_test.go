package fleet

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tether-dev/tether/cluster/image"
	"github.com/tether-dev/tether/cluster/progress"
)

// fakeDocker answers `docker version --format …` with out, or fails.
func fakeDocker(t *testing.T, out string, err error) func(context.Context, ...string) ([]byte, []byte, error) {
	return func(_ context.Context, args ...string) ([]byte, []byte, error) {
		if want := []string{"version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"}; !slices.Equal(args, want) {
			t.Errorf("docker %q, want docker %q", args, want)
		}
		if err != nil {
			return nil, []byte("Cannot connect to the Docker daemon\n"), err
		}
		return []byte(out), nil, nil
	}
}

// otherArch is an architecture this machine is not, so a test can tell
// "the engine's" from "runtime.GOARCH".
func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// The image is for the Docker engine's platform, not this machine's, and a
// Windows engine is refused.
func TestImageBuilderPlatform(t *testing.T) {
	b := imageBuilder{docker: fakeDocker(t, "linux/"+otherArch()+"\n", nil)}
	p, err := b.platform(t.Context())
	if err != nil || p != (image.Platform{OS: "linux", Arch: otherArch()}) {
		t.Errorf("platform %v, %v; want linux/%s", p, err, otherArch())
	}
	b.docker = fakeDocker(t, "windows/amd64\n", nil)
	if _, err := b.platform(t.Context()); err == nil || !strings.Contains(err.Error(), "runs windows containers") || !strings.Contains(err.Error(), "Linux containers") {
		t.Errorf("a Windows engine: %v", err)
	}
	b.docker = fakeDocker(t, "", errors.New("exit status 1"))
	if _, err := b.platform(t.Context()); err == nil || !strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
		t.Errorf("no engine: %v", err)
	}
	b.docker = fakeDocker(t, "/\n", nil)
	if _, err := b.platform(t.Context()); err == nil || !strings.Contains(err.Error(), "not os/arch") {
		t.Errorf("an engine without a platform: %v", err)
	}
}

type buildCall struct{ root, pkg, out, goos, goarch string }

func fakeBuild(calls *[]buildCall) func(context.Context, string, string, string, string, string) error {
	return func(_ context.Context, root, pkg, out, goos, goarch string) error {
		*calls = append(*calls, buildCall{root, pkg, out, goos, goarch})
		return nil
	}
}

// The running binary goes into the image when it fits the nodes; otherwise
// the checkout is cross-compiled for the engine's platform; without either,
// the error says what to do.
func TestImageBuilderBinary(t *testing.T) {
	engine := image.Platform{OS: "linux", Arch: otherArch()}
	var calls []buildCall
	fits := func(string, image.Platform) error { return nil }
	unfit := func(string, image.Platform) error {
		return errors.New("/usr/bin/tether is dynamically linked (built with cgo)")
	}
	noCheckout := func() string { return "" }
	checkout := func() string { return "/src/tether" }

	b := imageBuilder{executable: "/usr/bin/tether", runnable: fits, moduleRoot: checkout, build: fakeBuild(&calls)}
	path, how, err := b.binary(t.Context(), engine, "/work/tether")
	if err != nil || path != "/usr/bin/tether" || !strings.Contains(how, "running binary") || len(calls) != 0 {
		t.Errorf("a fitting binary: %q (%s), %v, builds %v; want it used as is", path, how, err, calls)
	}

	b.runnable = unfit
	path, how, err = b.binary(t.Context(), engine, "/work/tether")
	want := buildCall{"/src/tether", image.DefaultPackage, "/work/tether", "linux", otherArch()}
	if err != nil || path != "/work/tether" || !strings.Contains(how, "checkout") || len(calls) != 1 || calls[0] != want {
		t.Errorf("a dynamic binary and a checkout: %q (%s), %v, builds %+v; want %+v", path, how, err, calls, want)
	}

	b.moduleRoot = noCheckout
	_, _, err = b.binary(t.Context(), engine, "/work/tether")
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "checkout") {
		t.Errorf("neither: %v", err)
	}
	// On a machine of the nodes' platform, a static go install is the fix.
	_, _, err = b.binary(t.Context(), image.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}, "/work/tether")
	if runtime.GOOS == "linux" && (err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0 go install "+tetherPackage)) {
		t.Errorf("neither, same platform: %v", err)
	}
	b.executable = ""
	if _, _, err = b.binary(t.Context(), engine, "/work/tether"); err == nil {
		t.Error("no binary and no checkout succeeded")
	}
}

// From the engine's answer to an image archive: with a static binary for
// this machine's architecture (the engine says so), the archive holds an
// image of that platform under the digest-derived reference.
func TestImageBuilderBuildArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a small program")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/tiny\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tether")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var calls []buildCall
	b := imageBuilder{
		docker:     fakeDocker(t, "linux/"+runtime.GOARCH, nil),
		executable: bin,
		moduleRoot: func() string { return "/src/tether" },
		runnable:   image.Runnable,
		build:      fakeBuild(&calls),
		logger:     slog.New(slog.DiscardHandler),
	}
	archive := filepath.Join(t.TempDir(), "tether.tar")
	ref, err := b.buildArchive(t.Context(), progress.Discard().Start("build"), t.TempDir(), archive)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 0 {
		t.Errorf("built %+v although the running binary fits", calls)
	}
	if !strings.HasPrefix(ref, image.DefaultRepository+":") {
		t.Errorf("ref %q", ref)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("image platform %s/%s", cfg.OS, cfg.Architecture)
	}
}
