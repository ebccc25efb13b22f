package intercept

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/record"
)

// ReachOf is where this machine reaches the Service port of the intercept
// rec, whichever process holds it, for `intercept list` and the UI: the
// way its holder on this machine recorded (RecordReach, a port-forward on
// kind), else, on an embedded cluster of the workbench in stateDir, the
// address the cluster's service proxy serves it on. The error says why
// there is neither.
func ReachOf(ctx context.Context, stateDir string, cs kubernetes.Interface, rec record.Record) (string, error) {
	if r := RecordedReach(stateDir, rec); r != "" {
		return r, nil
	}
	return svcproxy.Reach(ctx, cs, svcproxy.RoutesFile(stateDir, rec.Cluster), rec.Namespace, rec.Service, rec.Port)
}

// ReachFile is where the process holding an intercept records the way to
// its Service it opened on this machine (Options.Reach's URL, on kind a
// port-forward), so that `intercept list` and the UI, other processes,
// can show it; stateDir is the workbench's state folder.
func ReachFile(stateDir string, rec record.Record) string {
	return filepath.Join(stateDir, "intercept", "reach", rec.Cluster+"-"+rec.Namespace+"-"+rec.Name)
}

// RecordedReach reads ReachFile: "" when no process on this machine
// recorded one.
func RecordedReach(stateDir string, rec record.Record) string {
	b, err := os.ReadFile(ReachFile(stateDir, rec))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// RecordReach writes url to ReachFile and returns the function that
// removes it again.
func RecordReach(stateDir string, rec record.Record, url string) func() {
	path := ReachFile(stateDir, rec)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return func() {}
	}
	if err := os.WriteFile(path, []byte(url+"\n"), 0o600); err != nil {
		return func() {}
	}
	return func() { _ = os.Remove(path) }
}
