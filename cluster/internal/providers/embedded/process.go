package embedded

import (
	"context"
	"time"

	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/process"
)

// The control-plane processes are ordinary workbench processes; these
// names keep the provider's code about clusters, not about /proc.

func startProcess(name, bin string, args []string, logPath string) (state.Process, <-chan error, error) {
	return process.Start(name, bin, args, logPath, nil)
}

func alive(p state.Process) bool { return process.Alive(p) }

func stopProcess(ctx context.Context, p state.Process, grace time.Duration) error {
	return process.Stop(ctx, p, grace)
}

func lastErrors(path string) string { return process.LastErrors(path) }

func procStat(pid int) (byte, uint64, error) { return process.Stat(pid) }
