package cli

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
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
	comps, err := fleet.ComponentStatuses(cmd.Context(), wb)
	if err != nil {
		return err
	}
	printComponents(g.out, comps)
	printAgents(cmd.Context(), g.out, wb, clusters)
	return nil
}

// printComponents shows each GitOps component with its restart count: a
// supervised process restarted after a crash (embedded), a pod's
// restartCount (kind).
func printComponents(out io.Writer, comps []fleet.ComponentStatus) {
	if len(comps) == 0 {
		return
	}
	where := "logs: " + filepath.Dir(comps[0].Log)
	if comps[0].Cluster != "" {
		where = "logs: kubectl --context tether-<cluster> -n " + cluster.SystemNamespace + " logs <pod>"
	}
	fmt.Fprintf(out, "\nGitOps components (%s):\n", where)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSTATE\tPID\tRESTARTS\tLAST EXIT")
	for _, c := range comps {
		name, pid := c.Name, "-"
		if c.Cluster != "" {
			name = c.Cluster + "/" + c.Name
		}
		if c.ChildPID > 0 {
			pid = strconv.Itoa(c.ChildPID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", name, c.State, pid, c.Restarts, cmp.Or(c.LastExit, "-"))
	}
	_ = tw.Flush()
}
