package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/gitops/fleet"
)

func newStatus(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each cluster (provider, API endpoint, ready or not and why), the GitOps components and the agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd, g)
		},
	}
}

func runStatus(cmd *cobra.Command, g *globals) error {
	wb, err := g.workbench()
	if err != nil {
		return err
	}
	provider, clusters, err := wb.Status(cmd.Context())
	if err != nil {
		return err
	}
	if len(clusters) == 0 {
		fmt.Fprintf(g.out, "No workbench in %s. Run `tether up` to create one.\n", wb.StateDir())
		return nil
	}
	fmt.Fprintf(g.out, "Workbench in %s (%s provider)\n\n", wb.StateDir(), provider)
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tROLE\tPROVIDER\tAPI SERVER\tNODES\tREADY\tWHY NOT")
	for _, c := range clusters {
		ready, why := "yes", ""
		if !c.Ready {
			ready, why = "no", c.Reason
		}
		nodes := c.Nodes
		if nodes == "" {
			nodes = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Role, c.Provider, c.Endpoint, nodes, ready, why)
	}
	_ = tw.Flush()
	for _, c := range clusters {
		if len(c.Processes) == 0 {
			continue
		}
		parts := make([]string, 0, len(c.Processes))
		for _, p := range c.Processes {
			mark := "running"
			if !p.Alive {
				mark = "DEAD"
			}
			parts = append(parts, fmt.Sprintf("%s %s (pid %d)", p.Name, mark, p.PID))
		}
		fmt.Fprintf(g.out, "\n%s processes: %s\n  logs: %s/logs\n", c.Name, strings.Join(parts, ", "), c.Dir)
	}
	comps, err := fleet.Components(wb)
	if err != nil {
		return err
	}
	if len(comps) > 0 {
		parts := make([]string, 0, len(comps))
		for _, p := range comps {
			mark := "running"
			if !p.Alive {
				mark = "DEAD"
			}
			parts = append(parts, fmt.Sprintf("%s %s (pid %d)", p.Name, mark, p.PID))
		}
		fmt.Fprintf(g.out, "\nGitOps components: %s\n  logs: %s\n", strings.Join(parts, ", "), filepath.Dir(comps[0].Log))
	}
	printAgents(cmd.Context(), g.out, wb, clusters)
	return nil
}
