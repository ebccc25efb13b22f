package fleet

import (
	"context"
	"time"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
)

// ComponentStatus is one process of the system.
type ComponentStatus struct {
	Name  string
	PID   int
	Alive bool
	Log   string
}

// Components lists the system's processes (embedded) and whether each runs.
func Components(wb *cluster.Workbench) ([]ComponentStatus, error) {
	st, err := Load(wb)
	if err != nil || st == nil {
		return nil, err
	}
	var out []ComponentStatus
	for _, p := range st.Processes {
		out = append(out, ComponentStatus{Name: p.Name, PID: p.PID, Alive: process.Alive(p), Log: p.Log})
	}
	return out, nil
}

func stopAll(ctx context.Context, procs []process.Record) {
	for i := len(procs) - 1; i >= 0; i-- {
		_ = process.Stop(ctx, procs[i], 10*time.Second)
	}
}
