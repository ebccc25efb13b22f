package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster/process"
)

// newSupervise is what `tether up` runs for each GitOps component on the
// embedded provider: it restarts the component when it crashes, as a
// kubelet restarts a pod's container on kind. Hidden: nobody types it.
func newSupervise(g *globals) *cobra.Command {
	var spec process.Spec
	cmd := &cobra.Command{
		Use:    "supervise --name NAME --status-file FILE -- COMMAND [ARGS...]",
		Short:  "Run a command and restart it whenever it exits, until SIGTERM",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec.Name == "" || spec.StatusPath == "" {
				return errors.New("supervise needs --name and --status-file")
			}
			spec.Bin, spec.Args = args[0], args[1:]
			return process.Supervise(cmd.Context(), spec, g.logger())
		},
	}
	// The component's own flags follow "--" and are not ours.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&spec.Name, "name", "", "the component's name, for log lines")
	cmd.Flags().StringVar(&spec.StatusPath, "status-file", "", "file to keep the child's pid, start time, restart count and last exit in")
	return cmd
}
