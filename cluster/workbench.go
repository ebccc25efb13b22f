package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/providers/embedded"
	"github.com/tether-dev/tether/cluster/internal/providers/existing"
	"github.com/tether-dev/tether/cluster/internal/providers/kind"
	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/cluster/progress"
)

// Options configure a Workbench. Zero values pick the defaults a user
// expects; tests point the folders and kubeconfig at temporary places.
type Options struct {
	// StateDir holds the state file, the CA and the embedded clusters' data.
	StateDir string
	// CacheDir holds compiled control-plane binaries, shared across
	// workbenches.
	CacheDir string
	// Kubeconfig is the file the tether-* contexts are merged into.
	Kubeconfig string
	Logger     *slog.Logger
	Progress   progress.Reporter
	// EngineCheck reports whether a Docker engine answers; it decides the
	// default provider. Nil asks the docker CLI.
	EngineCheck func(context.Context) error
}

// Workbench is one set of hub and spoke clusters.
type Workbench struct {
	opts  Options
	store state.Store
	// providerFor makes the named provider; tests replace it.
	providerFor func(name string, env providers.Env) (providers.Provider, error)
	// kindDoctor is what doctor asks the kind provider; tests replace it.
	kindDoctor func(ctx context.Context) (facts, warnings []string)
}

// DefaultStateDir is $TETHER_STATE_DIR, else $XDG_STATE_HOME/tether, else
// ~/.local/state/tether.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("TETHER_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tether"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state folder: %w (set TETHER_STATE_DIR)", err)
	}
	return filepath.Join(home, ".local", "state", "tether"), nil
}

// DefaultCacheDir is $TETHER_CACHE_DIR, else the user cache folder/tether.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("TETHER_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache folder: %w (set TETHER_CACHE_DIR)", err)
	}
	return filepath.Join(d, "tether"), nil
}

// New returns a workbench; it touches nothing until a method is called.
func New(opts Options) (*Workbench, error) {
	var err error
	if opts.StateDir == "" {
		if opts.StateDir, err = DefaultStateDir(); err != nil {
			return nil, err
		}
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if opts.Kubeconfig == "" {
		opts.Kubeconfig = DefaultKubeconfigPath()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard()
	}
	if opts.EngineCheck == nil {
		opts.EngineCheck = kind.EngineAnswers
	}
	w := &Workbench{opts: opts, store: state.Store{Dir: opts.StateDir}, providerFor: newProvider}
	w.kindDoctor = func(ctx context.Context) ([]string, []string) { return kind.New(w.env(nil)).Doctor(ctx) }
	return w, nil
}

// StateDir is where this workbench keeps its records.
func (w *Workbench) StateDir() string { return w.opts.StateDir }

// KubeconfigPath is the file holding the tether-* contexts.
func (w *Workbench) KubeconfigPath() string { return w.opts.Kubeconfig }

// ResolveProvider turns a requested provider ("" for automatic) into one
// that can run here, saying why when it cannot.
func (w *Workbench) ResolveProvider(ctx context.Context, requested string) (string, error) {
	switch requested {
	case "":
		if w.opts.EngineCheck(ctx) == nil {
			return ProviderKind, nil
		}
		return ProviderEmbedded, nil
	case ProviderKind:
		if err := w.opts.EngineCheck(ctx); err != nil {
			return "", fmt.Errorf("the kind provider needs a Docker engine: %w", err)
		}
		return ProviderKind, nil
	case ProviderEmbedded, ProviderExisting:
		return requested, nil
	}
	return "", fmt.Errorf("unknown provider %q: use one of %s", requested, strings.Join(ProviderNames(), ", "))
}

func (w *Workbench) env(ca *pki.CA) providers.Env {
	return providers.Env{StateDir: w.opts.StateDir, CacheDir: w.opts.CacheDir, CA: ca, Log: w.opts.Logger, Progress: w.opts.Progress}
}

func (w *Workbench) provider(name string, ca *pki.CA) (providers.Provider, error) {
	return w.providerFor(name, w.env(ca))
}

func newProvider(name string, env providers.Env) (providers.Provider, error) {
	switch name {
	case ProviderEmbedded:
		return embedded.New(env), nil
	case ProviderKind:
		return kind.New(env), nil
	case ProviderExisting:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		return existing.New(env, rules), nil
	}
	return nil, fmt.Errorf("unknown provider %q: use one of %s", name, strings.Join(ProviderNames(), ", "))
}

// Provider returns the provider the workbench runs on ("" when down).
func (w *Workbench) Provider() (string, error) {
	st, err := w.store.Load()
	if err != nil {
		return "", err
	}
	return st.Provider, nil
}

// CA returns the workbench CA (created with the workbench).
func (w *Workbench) CA() (*pki.CA, error) {
	if _, err := os.Stat(filepath.Join(w.opts.StateDir, "pki", "ca.key")); err != nil {
		return nil, ErrNoCA
	}
	return pki.LoadOrCreateCA(filepath.Join(w.opts.StateDir, "pki"), "tether workbench CA")
}
