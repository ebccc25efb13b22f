package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/cluster/progress"
)

// managedBy is the value of deploy.LabelManagedBy on what tether made,
// the hub namespace of each spoke included.
const managedBy = "tether"

// AddSpoke is `tether spoke add` and the UI's add: the cluster first, then
// the GitOps system again, which sees the new spoke and starts its agent,
// creates its sample Application on the hub and waits until it is Synced.
// A workbench brought up with --clusters-only stays without the system.
func AddSpoke(ctx context.Context, opts Options, spoke cluster.ClusterConfig) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	fst, err := Load(opts.Workbench)
	if err != nil {
		return err
	}
	clusters, err := opts.Workbench.AddSpoke(ctx, spoke)
	if err != nil {
		return err
	}
	if fst == nil {
		return nil
	}
	// The clusters with the new spoke are the ones to bring the system up
	// on, whatever the caller had.
	opts.Clusters = clusters
	if _, err := Up(ctx, opts); err != nil {
		return fmt.Errorf("spoke %s is created, but the GitOps system is not up with it: %w", spoke.Name, err)
	}
	return nil
}

// Removal says what RemoveSpoke found.
type Removal struct {
	// Cluster is false when the workbench had no cluster of that name and
	// only leftovers of a spoke that left without them (a ghost) were
	// removed: its Applications and Agent on the hub, its TLS material.
	Cluster bool
}

// RemoveSpoke is `tether spoke remove` and the UI's remove. What leaves
// the fleet leaves the hub: the spoke's agent is stopped, its hub
// namespace (or, in a namespace tether did not make, its Applications)
// and its Agent object are deleted, then its cluster and context, and
// last the GitOps system is brought up again for the spokes that remain,
// which drops it from the record and its TLS material from the fleet's
// folder. A name with no cluster that the hub or the fleet's folder still
// holds something of (a spoke an older tether, or `up` with other spokes,
// left behind) is cleaned up the same way instead of being refused.
func RemoveSpoke(ctx context.Context, opts Options, name string) (Removal, error) {
	if err := opts.defaults(); err != nil {
		return Removal{}, err
	}
	wb := opts.Workbench
	clusters, err := opts.clusters()
	if err != nil {
		return Removal{}, err
	}
	if len(clusters) == 0 {
		return Removal{}, fmt.Errorf("cannot remove spoke %q: %w", name, &cluster.NoClustersError{StateDir: wb.StateDir()})
	}
	hub, spokes, err := hubAndSpokes(clusters)
	if err != nil {
		return Removal{}, fmt.Errorf("cannot remove spoke %q: %w", name, err)
	}
	cfg := configOf(hub, spokes)
	fst, err := Load(wb)
	if err != nil {
		return Removal{}, err
	}
	if _, unknown := cfg.WithoutSpoke(name); unknown != nil {
		if name == cfg.Hub.Name || fst == nil {
			// The hub is never a spoke; without the GitOps system nothing
			// on the hub belongs to a spoke.
			return Removal{}, unknown
		}
		return Removal{}, removeGhost(ctx, opts, fst, hub, name, unknown)
	}
	// After the cluster went, the system comes up on the clusters the
	// workbench has left; if it did not go, Up reads them from the record.
	upOpts := opts
	upOpts.Clusters = nil
	r := spokeRemoval{
		name:     name,
		progress: opts.Progress,
		removeCluster: func(ctx context.Context) error {
			left, err := wb.RemoveSpoke(ctx, name)
			if err == nil {
				upOpts.Clusters = left
			}
			return err
		},
	}
	if fst != nil {
		r.stopAgents = agentStoppers(fst, name)
		r.deleteApps = func(ctx context.Context) error {
			h, err := newHubSide(hub)
			if err != nil {
				return err
			}
			return h.forget(ctx, name)
		}
		r.fleetUp = func(ctx context.Context) error { _, err := Up(ctx, upOpts); return err }
	}
	return Removal{Cluster: true}, r.run(ctx)
}

// agentStoppers stops the recorded agent processes of a spoke (embedded;
// on kind the agent goes with its cluster).
func agentStoppers(fst *State, name string) []func(context.Context) error {
	var out []func(context.Context) error
	for _, p := range fst.Processes {
		if p.Name == "agent-"+name {
			out = append(out, func(ctx context.Context) error { return process.Stop(ctx, p, 10*time.Second) })
		}
	}
	return out
}

// removeGhost removes what the fleet still holds of a spoke the workbench
// has no cluster for. unknown is the refusal to return when there is
// nothing of it anywhere: then the name is simply wrong.
func removeGhost(ctx context.Context, opts Options, fst *State, hub cluster.Cluster, name string, unknown error) error {
	wb := opts.Workbench
	h, err := newHubSide(hub)
	if err != nil {
		return fmt.Errorf("%w; the hub could not be asked for leftovers of it: %v", unknown, err)
	}
	seen, err := h.survey(ctx)
	if err != nil {
		return fmt.Errorf("%w; the hub could not be asked for leftovers of it: %v", unknown, err)
	}
	local := localLeftovers(wb)
	if !holdsSpoke(name, fst, local, seen) {
		return fmt.Errorf("%w; the hub holds nothing of it either", unknown)
	}
	step := opts.Progress.Start(fmt.Sprintf("remove what the hub still holds of %s (it has no cluster): %s", name, seen.describe(name)))
	var errs []error
	for _, stop := range agentStoppers(fst, name) {
		errs = append(errs, stop(ctx))
	}
	errs = append(errs, h.forget(ctx, name), os.RemoveAll(tlsDir(wb, name)))
	err = errors.Join(errs...)
	step.Done(err)
	if err != nil {
		return &IncompleteError{Err: fmt.Errorf("cannot remove the leftovers of spoke %s: %w", name, err), RemoveSpoke: name}
	}
	// Up rewrites the record without it (restarting the components when
	// the record still listed it) and checks the others are at rest.
	if _, err := Up(ctx, opts); err != nil {
		return &IncompleteError{Err: fmt.Errorf("the leftovers of spoke %s are removed, but the GitOps system is not up for the others: %w", name, err), Up: true}
	}
	return nil
}

// holdsSpoke reports whether the fleet's record or folder, or the hub,
// still holds anything of the spoke name.
func holdsSpoke(name string, fst *State, local []string, seen hubSpokes) bool {
	if slices.Contains(fst.Spokes, name) || slices.Contains(local, name) || len(agentStoppers(fst, name)) > 0 {
		return true
	}
	return seen.Namespaces[name] || seen.Apps[name] > 0 || seen.Agents[name]
}

// pruneLeftSpokes is the part of Up that makes the hub hold exactly the
// live spokes: whatever it, the previous record or the fleet's TLS folder
// holds of a spoke that is not live any more (left with `up --spoke ...`,
// a tether.yaml with other spokes, `spoke remove`, or an older tether
// that removed nothing) is removed. Applications in a namespace tether did
// not make, of a name tether never knew as a spoke, are the user's and
// stay; `tether spoke remove <name>` removes them explicitly.
func pruneLeftSpokes(ctx context.Context, opts Options, prev *State, hub cluster.Cluster, spokes []cluster.Cluster) error {
	h, err := newHubSide(hub)
	if err != nil {
		return err
	}
	live := make([]string, 0, len(spokes))
	for _, s := range spokes {
		live = append(live, s.Name)
	}
	var recorded []string
	if prev != nil {
		recorded = prev.Spokes
	}
	return h.prune(ctx, opts, hub.Name, live, recorded)
}

// prune is pruneLeftSpokes on a given hub: live are the spokes the
// workbench has, recorded those of the previous record.
func (h hubSide) prune(ctx context.Context, opts Options, hub string, live, recorded []string) error {
	seen, err := h.survey(ctx)
	if err != nil {
		return err
	}
	gone := leftSpokes(hub, live, recorded, localLeftovers(opts.Workbench), seen)
	if len(gone) == 0 {
		return nil
	}
	step := opts.Progress.Start("remove what the hub still holds of spokes no longer in the fleet: " + strings.Join(gone, ", "))
	var errs []error
	for _, name := range gone {
		step.Update(name + ": " + seen.describe(name))
		if err := h.forget(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.RemoveAll(tlsDir(opts.Workbench, name)); err != nil {
			errs = append(errs, fmt.Errorf("remove the TLS material of %s: %w", name, err))
		}
	}
	err = errors.Join(errs...)
	step.Done(err)
	if err != nil {
		return &IncompleteError{Err: fmt.Errorf("the hub still holds objects of spokes no longer in the fleet: %w", err), Up: true, RemoveSpoke: "*"}
	}
	return nil
}

// leftSpokes names the spokes that are not live but that the hub (a
// namespace tether made for them, an Agent object), the previous record or
// the fleet's TLS folder still holds something of, sorted. The hub itself
// and tether's own namespace are never spokes.
func leftSpokes(hub string, live, recorded, local []string, seen hubSpokes) []string {
	cand := map[string]bool{}
	for _, n := range recorded {
		cand[n] = true
	}
	for _, n := range local {
		cand[n] = true
	}
	for n := range seen.Namespaces {
		cand[n] = true
	}
	for n := range seen.Agents {
		cand[n] = true
	}
	var out []string
	for n := range cand {
		if n == "" || n == hub || n == cluster.SystemNamespace || slices.Contains(live, n) {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// localLeftovers are the spokes the fleet's TLS folder holds agent
// certificates of.
func localLeftovers(wb *cluster.Workbench) []string {
	entries, err := os.ReadDir(tlsDir(wb, ""))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "principal" {
			out = append(out, e.Name())
		}
	}
	return out
}

// configOf is the workbench's configuration as its clusters show it, for
// the refusals cluster.Config words (the hub, a name that is no spoke).
func configOf(hub cluster.Cluster, spokes []cluster.Cluster) cluster.Config {
	cfg := cluster.Config{Provider: hub.Provider, Hub: cluster.ClusterConfig{Name: hub.Name}}
	for _, s := range spokes {
		cfg.Spokes = append(cfg.Spokes, cluster.ClusterConfig{Name: s.Name})
	}
	return cfg
}

// spokeRemoval is the sequence of RemoveSpoke for a spoke with a cluster,
// its steps as functions so the handling of a failure can be tested
// without clusters. Without the GitOps system, deleteApps and fleetUp are
// nil and stopAgents empty.
type spokeRemoval struct {
	name          string
	progress      progress.Reporter
	stopAgents    []func(context.Context) error
	deleteApps    func(context.Context) error
	removeCluster func(context.Context) error
	fleetUp       func(context.Context) error
}

func (r spokeRemoval) run(ctx context.Context) error {
	rep := r.progress
	if rep == nil {
		rep = progress.Discard()
	}
	for _, stop := range r.stopAgents {
		step := rep.Start("stop the agent of " + r.name)
		err := stop(ctx)
		step.Done(err)
		if err != nil {
			return r.restore(ctx, fmt.Errorf("stop the agent of %s: %w", r.name, err))
		}
	}
	if r.deleteApps != nil {
		step := rep.Start(fmt.Sprintf("delete the Applications (namespace %s) and the Agent of %s on the hub", r.name, r.name))
		err := r.deleteApps(ctx)
		step.Done(err)
		if err != nil {
			return r.restore(ctx, err)
		}
	}
	if err := r.removeCluster(ctx); err != nil {
		return r.restore(ctx, err)
	}
	if r.fleetUp == nil {
		return nil
	}
	if err := r.fleetUp(ctx); err != nil {
		return &IncompleteError{Err: fmt.Errorf("spoke %s is removed, but the GitOps system did not come back up for the others: %w", r.name, err), Up: true}
	}
	return nil
}

// restore brings the GitOps system back after a removal failed part way:
// once the agent is stopped (or the Applications deleted) the spoke would
// otherwise stay without them. Up works from the clusters the workbench
// still has, so it serves whether or not the cluster went.
func (r spokeRemoval) restore(ctx context.Context, cause error) error {
	if r.fleetUp == nil {
		return fmt.Errorf("cannot remove spoke %s: %w", r.name, cause)
	}
	if ctx.Err() != nil {
		return &IncompleteError{Err: fmt.Errorf("cannot remove spoke %s: %w; interrupted before the GitOps system was brought back", r.name, cause), Up: true, RemoveSpoke: r.name}
	}
	if err := r.fleetUp(ctx); err != nil {
		return &IncompleteError{Err: fmt.Errorf("cannot remove spoke %s: %w; bringing the GitOps system back failed too (%v)", r.name, cause, err), Up: true, RemoveSpoke: r.name}
	}
	return &IncompleteError{Err: fmt.Errorf("cannot remove spoke %s: %w; the GitOps system is back up for the spokes the workbench still has", r.name, cause), RemoveSpoke: r.name}
}
