package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

func (w *Workbench) deleteCluster(ctx context.Context, prov providers.Provider, c state.Cluster) error {
	if prov.Traits().Adopted && c.OwnsSystemNamespace {
		// The cluster is the user's: take back only what tether put in it.
		if err := deleteSystemNamespace(ctx, c.Kubeconfig); err != nil {
			w.opts.Logger.Warn("could not remove tether's namespace", "cluster", c.Name, "err", err)
		}
	}
	return prov.Delete(ctx, c)
}

// Down removes every cluster of the workbench, its kubeconfig contexts and
// its state folder. Existing clusters stay; only what tether created in them
// goes.
func (w *Workbench) Down(ctx context.Context) error {
	unlock, err := w.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := w.store.Load()
	if err != nil {
		return err
	}
	var errs []error
	var names []string
	provName := st.Provider
	if len(st.Clusters) == 0 && (provName == "" || provName == ProviderKind) {
		// Nothing recorded, yet an up interrupted mid-create, or a lost
		// state file, may have left kind clusters of this workbench, which
		// their names tell. Without an engine there is nothing to find,
		// and nothing recorded to fail on.
		provName = ""
		if w.opts.EngineCheck(ctx) == nil {
			provName = ProviderKind
		}
	}
	if provName != "" {
		prov, err := w.provider(provName, nil)
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var g errgroup.Group
		for _, c := range st.Clusters {
			names = append(names, c.Name)
			g.Go(func() error {
				step := w.opts.Progress.Start(fmt.Sprintf("delete %s %s", c.Role, c.Name))
				err := w.deleteCluster(ctx, prov, c)
				step.Done(err)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
		// Then whatever the record lacks: a create interrupted by Ctrl-C
		// leaves node containers that only their names tie to us.
		if sw, ok := prov.(providers.Sweeper); ok {
			swept, err := sw.Sweep(ctx, nil)
			if err != nil {
				errs = append(errs, fmt.Errorf("remove clusters the record lacks: %w", err))
			}
			names = append(names, swept...)
		}
	}
	if err := removeContexts(w.opts.Kubeconfig, names); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Keep the record so the next down can retry what failed.
		return errors.Join(errs...)
	}
	return w.clearStateDir()
}

// clearStateDir removes the state file and everything else in the folder
// (CA, data, logs): all of it belonged to the clusters just removed. The
// lock file stays because the caller holds it.
func (w *Workbench) clearStateDir() error {
	entries, _ := os.ReadDir(w.opts.StateDir)
	for _, e := range entries {
		if e.Name() == "lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(w.opts.StateDir, e.Name())); err != nil {
			return fmt.Errorf("remove %s: %w", e.Name(), err)
		}
	}
	return nil
}
