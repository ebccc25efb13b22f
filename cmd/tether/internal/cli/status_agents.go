package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// printAgents lists the hub's Agent objects, which the principal keeps:
// per spoke, connected or not, its outbox depth, the latest propagation
// delays each way and how often its process restarted. Nothing when no
// hub is ready (the table above says why); a line saying why when the
// Agents cannot be read.
func printAgents(ctx context.Context, w io.Writer, wb *cluster.Workbench, clusters []cluster.ClusterStatus) {
	i := slices.IndexFunc(clusters, func(c cluster.ClusterStatus) bool { return c.Role == cluster.RoleHub && c.Ready })
	if i < 0 {
		return
	}
	agents, err := listAgents(ctx, wb, clusters[i].Name)
	if err != nil {
		fmt.Fprintf(w, "\nAgents: could not list them on %s: %v\n", clusters[i].Name, err)
		return
	}
	if len(agents) == 0 {
		return
	}
	fmt.Fprintf(w, "\nAgents (the Agent objects on %s):\n", clusters[i].Name)
	agentTable(w, agents, time.Now())
}

func listAgents(ctx context.Context, wb *cluster.Workbench, hub string) ([]v1alpha1.Agent, error) {
	cfg, err := wb.RESTConfig(hub)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	list, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Agents in %s: %w", cluster.SystemNamespace, err)
	}
	out := make([]v1alpha1.Agent, 0, len(list.Items))
	for i := range list.Items {
		var a v1alpha1.Agent
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &a); err != nil {
			return nil, fmt.Errorf("decode Agent %s: %w", list.Items[i].GetName(), err)
		}
		out = append(out, a)
	}
	return out, nil
}

// agentTable writes one line per Agent, by name.
func agentTable(w io.Writer, agents []v1alpha1.Agent, now time.Time) {
	agents = slices.Clone(agents)
	slices.SortFunc(agents, func(a, b v1alpha1.Agent) int { return cmp.Compare(a.Name, b.Name) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tCONNECTED\tLAST SEEN\tOUTBOX\tHUB→SPOKE\tSPOKE→HUB\tRESTARTS\tVERSION")
	for _, a := range agents {
		st := a.Status
		conn := "no"
		if st.Connected {
			conn = "yes"
		}
		seen := "-"
		if st.LastSeen != nil {
			seen = now.Sub(st.LastSeen.Time).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", a.Name, conn, seen, st.Pending,
			millis(st.LastHubToSpokeMillis), millis(st.LastSpokeToHubMillis), st.Restarts, cmp.Or(st.Version, "-"))
	}
	_ = tw.Flush()
}

// millis shows a delay in milliseconds the way people read one: "-" for
// none measured yet, milliseconds under a second, else seconds.
func millis(ms *int64) string {
	switch {
	case ms == nil:
		return "-"
	case *ms < 1000:
		return strconv.FormatInt(*ms, 10) + "ms"
	default:
		return (time.Duration(*ms) * time.Millisecond).Round(100 * time.Millisecond).String()
	}
}
