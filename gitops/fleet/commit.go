package fleet

import (
	"context"
	"fmt"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/sample"
)

// MakeChange commits a new replica count for the sample to the sample
// repository, so a newcomer can watch one commit roll out to every spoke.
// It returns the new commit.
func MakeChange(ctx context.Context, wb *cluster.Workbench, replicas int) (string, error) {
	st, err := Load(wb)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", ErrNotUp
	}
	edits := []sample.Edit{sample.Scale(sample.PlainDeployment, replicas)}
	for _, s := range st.Spokes {
		edits = append(edits, sample.ScaleOverlay(s, replicas))
	}
	return Commit(ctx, wb, fmt.Sprintf("scale the sample to %d replicas", replicas), edits...)
}

// Commit commits edits to the sample repository the way a user's git push
// does, on either provider: straight to the Git server on loopback
// (embedded), or through a port-forward to its pod on the hub (kind). The
// push webhook then carries the change to every agent.
func Commit(ctx context.Context, wb *cluster.Workbench, msg string, edits ...sample.Edit) (string, error) {
	st, err := Load(wb)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", ErrNotUp
	}
	if st.LocalGitURL != "" {
		return sample.Commit(ctx, st.LocalGitURL, msg, edits...)
	}
	hub, err := hubOf(wb)
	if err != nil {
		return "", fmt.Errorf("no hub to reach the Git server on: %w", err)
	}
	var sha string
	err = withGitForward(ctx, hub, func(base string) error {
		var cerr error
		sha, cerr = sample.Commit(ctx, base+"/"+SampleRepo+".git", msg, edits...)
		return cerr
	})
	return sha, err
}
