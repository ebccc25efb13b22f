package tui

import (
	"context"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
)

// fleetOptions are the options of the fleet's lifecycle calls: progress
// to the UI, logs to its file.
func (s *workbenchSource) fleetOptions() fleet.Options {
	return fleet.Options{Workbench: s.wb, Progress: s.rep, Logger: s.log}
}

// Up does what a bare `tether up` does (fleet.UpWorkbench): the clusters,
// then the GitOps system on them. What it brings up is worked out now, as
// the CLI does (cluster.BaseConfig): ./tether.yaml when there is one, else
// the clusters the workbench has (spokes added or removed since
// included), else a hub and two spokes.
func (s *workbenchSource) Up(ctx context.Context) error {
	recorded, err := s.wb.RecordedConfig()
	if err != nil {
		return err
	}
	cfg, err := cluster.BaseConfig("", recorded)
	if err != nil {
		return err
	}
	_, _, err = fleet.UpWorkbench(ctx, s.fleetOptions(), cfg, false)
	return err
}

// Down is `tether down` (fleet.DownWorkbench).
func (s *workbenchSource) Down(ctx context.Context) error {
	s.stopWatch() // the next probe starts it again if the hub stays
	return fleet.DownWorkbench(ctx, s.wb)
}

// AddSpoke and RemoveSpoke are `tether spoke add/remove`: the same fleet
// functions.
func (s *workbenchSource) AddSpoke(ctx context.Context, name string) error {
	return fleet.AddSpoke(ctx, s.fleetOptions(), cluster.ClusterConfig{Name: name})
}

func (s *workbenchSource) RemoveSpoke(ctx context.Context, name string) error {
	_, err := fleet.RemoveSpoke(ctx, s.fleetOptions(), name)
	return err
}
