package fleet

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/gitserver"
	"github.com/tether-dev/tether/gitops/sample"
)

// A second up must not undo commits to the sample repository: ensureSample,
// which both providers run, seeds only a repository without a sample.
func TestEnsureSampleKeepsCommits(t *testing.T) {
	ctx := context.Background()
	srv, err := gitserver.New(t.TempDir(), gitserver.Options{Logger: slog.New(slog.DiscardHandler), AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); _ = srv.Close() })
	if err := srv.CreateRepo(SampleRepo); err != nil {
		t.Fatal(err)
	}
	url := gitserver.URL(hs.URL, SampleRepo)
	spokes := []string{"spoke-1", "spoke-2"}
	w := sample.TetherWorkload("tether.local/tether:aaaaaaaaaaaa")
	step := progress.Discard().Start("seed")

	if err := ensureSample(ctx, step, url, spokes, w); err != nil {
		t.Fatal(err)
	}
	scaled, err := sample.Commit(ctx, url, "scale", sample.ScaleOverlay("spoke-1", 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureSample(ctx, step, url, spokes, w); err != nil {
		t.Fatal(err)
	}
	// Seed would move main back to the seeded content with a new commit.
	// A Commit without edits changes nothing and returns the head.
	if head, err := sample.Commit(ctx, url, "nothing"); err != nil || head != scaled {
		t.Errorf("after a second ensure main is at %s (%v), want the scale commit %s", head, err, scaled)
	}
}
