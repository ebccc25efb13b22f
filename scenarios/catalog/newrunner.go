package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tether-dev/tether/cluster"
)

// RunOptions are what a run of scenarios is asked for: the arguments of
// `tether scenario run`, or the one name the UI's Scenarios screen runs.
type RunOptions struct {
	// Names pick scenarios by name and Label by label expression; with
	// neither, every scenario for the workbench's provider runs (see
	// NewRunner).
	Names []string
	Label string
	// Provider is the provider of a new workbench: embedded, kind or
	// existing; empty picks (Runner.Provider).
	Provider string
	Keep     bool
	WorkDir  string
	UpArgs   []string
	// Bin is the tether binary the scenarios run; empty is this program.
	Bin string
	// StateDir, CacheDir and Kubeconfig name the workbench; empty ones
	// are the workbench's defaults.
	StateDir, CacheDir, Kubeconfig string
	Observer                       Observer
	// Engine says whether a Docker engine answers, for a run of every
	// scenario with no provider to go by; nil is
	// cluster.DockerEngineAnswers. Tests stand in for it.
	Engine func(context.Context) error
}

// RunsAll says the run picks no scenarios by name or label: it runs every
// one the workbench's provider supports.
func (o RunOptions) RunsAll() bool {
	return len(o.Names) == 0 && strings.TrimSpace(o.Label) == ""
}

// NewRunner checks o and builds the runner and the scenarios it is to
// run; it touches nothing, so bad input fails before any workbench is
// started. With no names and no label it picks every scenario for the
// workbench's provider (the one o names, else the one the workbench in the
// state folder runs on, else the one ./tether.yaml names, else what `tether
// up` picks), pins that provider for the runner's up, and leftOut names
// the scenarios labelled for another provider.
func NewRunner(ctx context.Context, o RunOptions) (r *Runner, picked []Scenario, leftOut []string, err error) {
	switch o.Provider {
	case "", cluster.ProviderEmbedded, cluster.ProviderKind, cluster.ProviderExisting:
	default:
		return nil, nil, nil, fmt.Errorf("unknown provider %q: use embedded, kind or existing", o.Provider)
	}
	all := o.RunsAll()
	if !all {
		if picked, err = Select(o.Names, o.Label); err != nil {
			return nil, nil, nil, err
		}
	}
	wb := WorkbenchPaths{Bin: o.Bin, StateDir: o.StateDir, CacheDir: o.CacheDir, Kubeconfig: o.Kubeconfig}
	if wb.Bin == "" {
		if wb.Bin, err = os.Executable(); err != nil {
			return nil, nil, nil, fmt.Errorf("find the tether binary to run scenarios with: %w", err)
		}
	}
	if wb.StateDir == "" {
		if wb.StateDir, err = cluster.DefaultStateDir(); err != nil {
			return nil, nil, nil, err
		}
	}
	if wb.CacheDir == "" {
		if wb.CacheDir, err = cluster.DefaultCacheDir(); err != nil {
			return nil, nil, nil, err
		}
	}
	if wb.Kubeconfig == "" {
		wb.Kubeconfig = cluster.DefaultKubeconfigPath()
	}
	r = &Runner{Workbench: wb, Provider: o.Provider, UpArgs: o.UpArgs, Keep: o.Keep, WorkDir: o.WorkDir, Observer: o.Observer}
	if all {
		provider, err := runProvider(ctx, wb, o)
		if err != nil {
			return nil, nil, nil, err
		}
		picked, leftOut = ForProvider(All(), provider)
		if len(picked) == 0 {
			return nil, nil, nil, fmt.Errorf("no scenario runs on the %s provider; every one is labelled for another (%s)", provider, strings.Join(leftOut, ", "))
		}
		// The workbench is brought up (or reattached) on the provider
		// the scenarios were picked for, never on another one.
		r.Provider = provider
	}
	return r, picked, leftOut, nil
}

// runProvider finds the provider a run of every scenario is for:
// o.Provider, else the one the workbench in the state folder runs on, else
// the one ./tether.yaml names (the runner's `tether up` reads it), else
// what up picks by itself.
func runProvider(ctx context.Context, wb WorkbenchPaths, o RunOptions) (string, error) {
	if o.Provider != "" {
		return o.Provider, nil
	}
	cw, err := cluster.New(cluster.Options{StateDir: wb.StateDir, CacheDir: wb.CacheDir, Kubeconfig: wb.Kubeconfig})
	if err != nil {
		return "", err
	}
	running, err := cw.Provider()
	if err != nil {
		return "", err
	}
	var configured string
	if _, serr := os.Stat("tether.yaml"); running == "" && !errors.Is(serr, os.ErrNotExist) {
		cfg, err := cluster.LoadConfig("tether.yaml")
		if err != nil {
			return "", err
		}
		configured = cfg.Provider
	}
	engine := o.Engine
	if engine == nil {
		engine = cluster.DockerEngineAnswers
	}
	return pickProvider(ctx, running, configured, engine), nil
}

// pickProvider is running (the workbench's provider) when set, else
// configured (tether.yaml's), else up's own choice: kind when a Docker
// engine answers, else embedded. engine is asked only then.
func pickProvider(ctx context.Context, running, configured string, engine func(context.Context) error) string {
	for _, p := range []string{running, configured} {
		if p != "" {
			return p
		}
	}
	if engine(ctx) == nil {
		return cluster.ProviderKind
	}
	return cluster.ProviderEmbedded
}

// ForProvider splits all into the scenarios a workbench of provider runs,
// in order, and the names of those labelled for another provider.
func ForProvider(all []Scenario, provider string) (run []Scenario, leftOut []string) {
	for _, s := range all {
		if SkipReason(s, provider) != "" {
			leftOut = append(leftOut, s.Name)
			continue
		}
		run = append(run, s)
	}
	return run, leftOut
}
