package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tether-dev/tether/cluster/image"
	"github.com/tether-dev/tether/cluster/progress"
)

// imageBuilder makes tether's image for the kind nodes. Its fields are the
// outside world (the docker CLI, the running binary, the checkout, the Go
// toolchain), so tests can stand in for each.
type imageBuilder struct {
	// docker runs the docker CLI and returns its stdout and stderr.
	docker func(ctx context.Context, args ...string) ([]byte, []byte, error)
	// executable is the running tether (Options.Bin).
	executable string
	// moduleRoot returns tether's checkout, or "" when there is none.
	moduleRoot func() string
	// runnable is image.Runnable, build is image.BuildBinary.
	runnable func(path string, p image.Platform) error
	build    func(ctx context.Context, moduleRoot, pkg, outPath, goos, goarch string) error
	logger   *slog.Logger
}

// buildArchive writes the image to archive and returns its reference.
func (b imageBuilder) buildArchive(ctx context.Context, step progress.Step, work, archive string) (string, error) {
	p, err := b.platform(ctx)
	if err != nil {
		return "", err
	}
	bin, how, err := b.binary(ctx, p, filepath.Join(work, "tether"))
	if err != nil {
		return "", err
	}
	step.Update(p.String() + ", " + how)
	img, err := image.Build(bin, image.Options{Arch: p.Arch, Logger: b.logger})
	if err != nil {
		return "", err
	}
	ref, err := image.Ref(img)
	if err != nil {
		return "", err
	}
	return ref, image.WriteArchive(img, ref, archive)
}

// platform asks the Docker engine which platform its containers, and so
// the kind nodes, run: an arm64 engine (Docker Desktop on Apple silicon,
// say) needs an arm64 image whatever machine builds it.
func (b imageBuilder) platform(ctx context.Context) (image.Platform, error) {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, errOut, err := b.docker(tctx, "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")
	if err != nil {
		why := strings.TrimSpace(string(errOut))
		if why == "" {
			why = err.Error()
		}
		if ctx.Err() != nil {
			return image.Platform{}, ctx.Err()
		}
		return image.Platform{}, fmt.Errorf("ask the Docker engine for its platform (docker version): %s", why)
	}
	p, err := image.ParsePlatform(string(out))
	if err != nil {
		return image.Platform{}, fmt.Errorf("the Docker engine's platform (docker version): %w", err)
	}
	if p.OS != "linux" {
		return image.Platform{}, fmt.Errorf("the Docker engine runs %s containers; kind and tether's image need Linux containers: switch the engine to Linux containers, or use the embedded provider", p.OS)
	}
	return p, nil
}

// binary returns a tether binary for p: the running one when it fits as it
// is, else one cross-compiled from the checkout into out. how says which,
// for the progress line.
func (b imageBuilder) binary(ctx context.Context, p image.Platform, out string) (path, how string, err error) {
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	var why error
	if b.executable != "" {
		if why = b.runnable(b.executable, p); why == nil {
			return b.executable, "the running binary as it is", nil
		}
		b.logger.Debug("the running tether cannot go into the image as it is", "binary", b.executable, "platform", p.String(), "why", why)
	} else {
		why = errors.New("the running binary is unknown")
	}
	if root := b.moduleRoot(); root != "" {
		if err := b.build(ctx, root, image.DefaultPackage, out, p.OS, p.Arch); err != nil {
			return "", "", err
		}
		return out, "built from the checkout at " + root, nil
	}
	advice := "run tether from its checkout (go tool task up), which cross-compiles one"
	if runtime.GOOS == p.OS && runtime.GOARCH == p.Arch {
		advice = "install tether as a static binary (CGO_ENABLED=0 go install " + tetherPackage + "@latest) or " + advice
	}
	return "", "", fmt.Errorf("kind nodes need a static Linux tether for %s: the running binary does not fit (%v), and there is no tether checkout here to build one from; %s", p, why, advice)
}

// tetherPackage is tether's main package, for go install.
const tetherPackage = "github.com/tether-dev/tether/cmd/tether"

func runDocker(ctx context.Context, args ...string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// moduleRoot finds tether's checkout: given, else the working directory or
// a parent of it; "" when there is none.
func moduleRoot(given string) string {
	dir := given
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return ""
		}
		dir = wd
	}
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/tether-dev/tether\n") {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
