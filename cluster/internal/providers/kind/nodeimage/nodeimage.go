package nodeimage

import (
	"context"
	"log/slog"

	"github.com/tether-dev/tether/cluster/progress"
)

// Repository is where offline-built node images are tagged.
const Repository = "tether.local/kind-node"

// Options say where to build and how to report.
type Options struct {
	// CacheDir is tether's cache folder: compiled binaries and the Debian
	// root filesystem are kept below it between builds.
	CacheDir string
	// Mirror is the Debian mirror debootstrap downloads from; empty means
	// TETHER_DEBIAN_MIRROR, else the first Debian mirror of this machine's
	// apt sources, else http://deb.debian.org/debian.
	Mirror   string
	Log      *slog.Logger
	Progress progress.Reporter
}

// Ref is the image reference an offline build of this tether produces.
func Ref() string { return Repository + ":" + tag() }

// Ensure returns Ref, building the image first when Docker does not have it.
// Progress goes to opts.Progress step by step; the cold build compiles the
// node's Kubernetes binaries (minutes) and runs debootstrap.
func Ensure(ctx context.Context, opts Options) (string, error) {
	b := newBuilder(opts)
	return b.ensure(ctx)
}

// Present reports whether Docker already has the image, so callers can say
// whether an `up` will build it.
func Present(ctx context.Context) bool {
	_, _, err := runDocker(ctx, nil, "image", "inspect", "--format", "{{.Id}}", Ref())
	return err == nil
}

// CanBuild returns nil when this machine can build the image, else an error
// that says what is missing and what to do instead.
func CanBuild() error { return canBuild() }

// CannotBuildError says this machine cannot build the node image; with
// NeedsRoot, it can once as root. Naming an image Docker has or can pull
// (kind.nodeImage) does without the build.
type CannotBuildError struct {
	Err       error
	NeedsRoot bool
}

func (e *CannotBuildError) Error() string { return e.Err.Error() }
func (e *CannotBuildError) Unwrap() error { return e.Err }
