package cluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

// RecordedConfig is the configuration of the clusters the workbench has
// now, as its record says: what `tether up` would have been given to make
// them. Pinned API server ports are not recorded, so they come back as 0
// (a running cluster keeps its port either way).
func (w *Workbench) RecordedConfig() (Config, error) {
	st, err := w.store.Load()
	if err != nil {
		return Config{}, err
	}
	return recordedConfig(st), nil
}

func recordedConfig(st *state.File) Config {
	cfg := Config{Provider: st.Provider, Kind: KindConfig{NodeImage: st.KindNodeImage}}
	for i, c := range st.Clusters {
		cc := ClusterConfig{Name: c.Name, Context: c.Context}
		// The record lists the hub first; the role decides in case a hand
		// edit reordered it.
		if c.Role == providers.RoleHub || (i == 0 && !hasHub(st)) {
			cfg.Hub = cc
			continue
		}
		cfg.Spokes = append(cfg.Spokes, cc)
	}
	return cfg
}

func hasHub(st *state.File) bool {
	for _, c := range st.Clusters {
		if c.Role == providers.RoleHub {
			return true
		}
	}
	return false
}

// AddSpoke creates one more spoke next to the clusters the workbench has,
// the way Up with that spoke added to the configuration would; the others
// are reattached, not recreated. It refuses a name already in use and a
// workbench that is not up.
func (w *Workbench) AddSpoke(ctx context.Context, spoke ClusterConfig) ([]Cluster, error) {
	return w.changeSpokes(ctx, func(st *state.File) (Config, error) { return withSpoke(st, spoke, w.opts.StateDir) })
}

// RemoveSpoke deletes one spoke: its cluster, its data and its kubeconfig
// context, and drops it from the record. The hub cannot be removed this way
// (`tether down` removes the whole workbench).
func (w *Workbench) RemoveSpoke(ctx context.Context, name string) ([]Cluster, error) {
	return w.changeSpokes(ctx, func(st *state.File) (Config, error) { return withoutSpoke(st, name, w.opts.StateDir) })
}

// changeSpokes checks want against the record before taking the lock as
// well as under it, so a refused change leaves nothing behind (the lock
// would create the state folder).
func (w *Workbench) changeSpokes(ctx context.Context, want func(*state.File) (Config, error)) ([]Cluster, error) {
	st, err := w.store.Load()
	if err != nil {
		return nil, err
	}
	if _, err := want(st); err != nil {
		return nil, err
	}
	return w.reconcile(ctx, want)
}

// WithSpoke returns the configuration with spoke added after the others.
// It refuses the hub's name, a spoke that is there already and a name that
// is not DNS-safe, naming the spoke in every case.
func (c Config) WithSpoke(spoke ClusterConfig) (Config, error) {
	if spoke.Name == c.Hub.Name {
		return Config{}, fmt.Errorf("cannot add spoke %q: that is the name of the hub; choose another name", spoke.Name)
	}
	for _, s := range c.Spokes {
		if s.Name == spoke.Name {
			return Config{}, fmt.Errorf("cannot add spoke %q: the workbench has it already (spokes: %s)", spoke.Name, spokeNames(c))
		}
	}
	out := c
	out.Spokes = append(append([]ClusterConfig(nil), c.Spokes...), spoke)
	if err := out.Validate(); err != nil {
		return Config{}, fmt.Errorf("cannot add spoke %q: %w", spoke.Name, err)
	}
	return out, nil
}

// WithoutSpoke returns the configuration without the named spoke. It
// refuses the hub and a name that is not a spoke.
func (c Config) WithoutSpoke(name string) (Config, error) {
	if name == c.Hub.Name {
		return Config{}, fmt.Errorf("cannot remove %q: %w", name, ErrIsHub)
	}
	kept := make([]ClusterConfig, 0, len(c.Spokes))
	for _, s := range c.Spokes {
		if s.Name != name {
			kept = append(kept, s)
		}
	}
	if len(kept) == len(c.Spokes) {
		return Config{}, fmt.Errorf("cannot remove spoke %q: the workbench has no spoke of that name (spokes: %s)", name, spokeNames(c))
	}
	out := c
	out.Spokes = kept
	return out, nil
}

func withSpoke(st *state.File, spoke ClusterConfig, dir string) (Config, error) {
	if len(st.Clusters) == 0 {
		return Config{}, fmt.Errorf("cannot add spoke %q: %w", spoke.Name, &NoClustersError{StateDir: dir})
	}
	return recordedConfig(st).WithSpoke(spoke)
}

func withoutSpoke(st *state.File, name string, dir string) (Config, error) {
	if len(st.Clusters) == 0 {
		return Config{}, fmt.Errorf("cannot remove spoke %q: %w", name, &NoClustersError{StateDir: dir})
	}
	return recordedConfig(st).WithoutSpoke(name)
}

func spokeNames(cfg Config) string {
	if len(cfg.Spokes) == 0 {
		return "none"
	}
	names := make([]string, 0, len(cfg.Spokes))
	for _, s := range cfg.Spokes {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}
