package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster/internal/providers/embedded"
	"github.com/tether-dev/tether/cluster/internal/providers/existing"
	"github.com/tether-dev/tether/cluster/progress"
)

// Check is doctor's verdict on one provider.
type Check struct {
	Provider string
	OK       bool
	// Detail says what was found; when !OK it says why the provider cannot
	// run here and what to install or start.
	Detail string
	// Err is the error Detail was made from, when !OK: the command adds
	// what to type for its cause.
	Err error
	// Default marks the provider `up` picks without --provider.
	Default bool
	// Warnings are what may still go wrong with a usable provider here,
	// each saying what to do.
	Warnings []string
}

// Doctor says which providers can run here and, for each that cannot, why
// and what to do. It changes nothing.
func (w *Workbench) Doctor(ctx context.Context) []Check {
	var checks []Check
	engineErr := w.opts.EngineCheck(ctx)
	kindCheck := Check{Provider: ProviderKind, OK: engineErr == nil, Default: engineErr == nil}
	if engineErr == nil {
		facts, warnings := w.kindDoctor(ctx)
		kindCheck.Detail = strings.Join(append([]string{"a Docker engine answers; clusters run as kind node containers"}, facts...), "; ")
		kindCheck.Warnings = warnings
	} else {
		kindCheck.Detail, kindCheck.Err = engineErr.Error(), engineErr
	}
	checks = append(checks, kindCheck)

	b := embedded.NewBuilder(w.opts.CacheDir, progress.Discard())
	emb := Check{Provider: ProviderEmbedded, Default: engineErr != nil}
	if b.Cached() {
		emb.OK = true
		emb.Detail = fmt.Sprintf("Kubernetes %s binaries are cached in %s; up takes seconds", embedded.KubernetesVersion, b.Dir())
	} else if err := embedded.New(w.env(nil)).Preflight(ctx); err != nil {
		emb.Detail, emb.Err = err.Error(), err
	} else {
		emb.OK = true
		emb.Detail = fmt.Sprintf("the first up compiles Kubernetes %s, etcd %s and kwok %s from the Go module proxy into %s (about 10 minutes on 2 cores, then cached)",
			embedded.KubernetesVersion, embedded.EtcdVersion, embedded.KwokVersion, filepath.Join(w.opts.CacheDir, "controlplane"))
	}
	checks = append(checks, emb)

	ex := Check{Provider: ProviderExisting}
	if err := existing.New(w.env(nil), clientcmd.NewDefaultClientConfigLoadingRules()).Preflight(ctx); err != nil {
		ex.Detail = err.Error() + " (needed only for --provider existing)"
	} else {
		ex.OK = true
		ex.Detail = "the kubeconfig has contexts; name them with --context <cluster>=<context>"
	}
	checks = append(checks, ex)
	if err := stateWritable(w.opts.StateDir); err != nil {
		for i := range checks {
			checks[i].OK = false
			checks[i].Detail = err.Error()
			checks[i].Warnings = nil
		}
	}
	return checks
}

// stateWritable checks the folder every provider keeps its records in.
func stateWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state folder %s is not writable: %w (set TETHER_STATE_DIR)", dir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("state folder %s is not writable: %w (set TETHER_STATE_DIR)", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// Prepare compiles and caches the embedded provider's control-plane
// binaries now, as the first embedded `up` would, and returns their folder.
// CI runs it ahead of time so the build is not charged to a scenario.
func (w *Workbench) Prepare(ctx context.Context) (string, error) {
	b, err := embedded.NewBuilder(w.opts.CacheDir, w.opts.Progress).Ensure(ctx)
	if err != nil {
		return "", err
	}
	return b.Dir, nil
}

// ControlPlaneCache says where the embedded provider's compiled binaries
// live and whether they are built already (`tether prepare` builds them).
// doctor reports it; it changes nothing.
func (w *Workbench) ControlPlaneCache() (dir string, cached bool) {
	b := embedded.NewBuilder(w.opts.CacheDir, progress.Discard())
	return b.Dir(), b.Cached()
}
