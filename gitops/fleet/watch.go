package fleet

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/repo"
)

// WatchRollout waits until the hub shows every spoke's sample Application
// Synced and Healthy at commit sha, reporting each spoke as it gets there
// on p: what a user watches after `tether sample scale`. It gives up after
// timeout, naming the spokes still on their way and what they show.
func WatchRollout(ctx context.Context, wb *cluster.Workbench, sha string, p progress.Reporter, timeout time.Duration) error {
	st, err := Load(wb)
	if err != nil {
		return err
	}
	if st == nil {
		return ErrNotUp
	}
	hub, err := hubOf(wb)
	if err != nil {
		return fmt.Errorf("no hub to watch the rollout on: %w", err)
	}
	cfg, err := hub.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	step := p.Start(fmt.Sprintf("watch %s reach every spoke", repo.ShortSHA(sha)))
	deadline := time.Now().Add(timeout)
	started := time.Now()
	arrived := map[string]time.Duration{}
	for {
		waiting := map[string]string{}
		for _, s := range st.Spokes {
			if _, ok := arrived[s]; ok {
				continue
			}
			u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(s).Get(ctx, SampleApp, metav1.GetOptions{})
			if err != nil {
				waiting[s] = err.Error()
				continue
			}
			app, err := v1alpha1.ApplicationFrom(u)
			if err != nil {
				return err
			}
			got := app.Status
			if got.Sync.Revision == sha && got.Sync.Status == v1alpha1.SyncStatusSynced && got.Health.Status == "Healthy" {
				arrived[s] = time.Since(started)
				continue
			}
			waiting[s] = fmt.Sprintf("%s/%s at %s", cmp.Or(got.Sync.Status, "-"), cmp.Or(got.Health.Status, "-"), cmp.Or(repo.ShortSHA(got.Sync.Revision), "-"))
		}
		step.Update(describeArrivals(arrived, len(st.Spokes)))
		if len(waiting) == 0 {
			step.Done(nil)
			return nil
		}
		if time.Now().After(deadline) {
			var parts []string
			for _, s := range spokeNames(waiting) {
				parts = append(parts, s+": "+waiting[s])
			}
			err := &AppNotReadyError{App: SampleApp, Namespace: spokeNames(waiting)[0], Context: cluster.ContextName(hub.Name),
				Err: fmt.Errorf("commit %s did not reach every spoke within %s (%s); see the agent's log", repo.ShortSHA(sha), timeout, strings.Join(parts, "; "))}
			step.Done(err)
			return err
		}
		select {
		case <-ctx.Done():
			step.Done(ctx.Err())
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// describeArrivals says which spokes have the commit and when it got there.
func describeArrivals(arrived map[string]time.Duration, total int) string {
	var parts []string
	for s, d := range arrived {
		parts = append(parts, fmt.Sprintf("%s after %s", s, d.Round(100*time.Millisecond)))
	}
	sort.Strings(parts)
	s := fmt.Sprintf("%d/%d spokes Synced and Healthy", len(arrived), total)
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

func spokeNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
