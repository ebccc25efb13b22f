package fleet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/cluster"
)

// UpWorkbench checks the configuration once, through the workbench's Up,
// before anything is made: a bad one leaves no state behind.
func TestUpWorkbenchRefusesABadConfigBeforeAnything(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	wb, err := cluster.New(cluster.Options{StateDir: state, CacheDir: t.TempDir(), Kubeconfig: filepath.Join(t.TempDir(), "config")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.Config{Provider: "vm", Hub: cluster.ClusterConfig{Name: "hub"}, Spokes: []cluster.ClusterConfig{{Name: "Bad_Name"}}}
	clusters, st, err := UpWorkbench(context.Background(), Options{Workbench: wb}, cfg, false)
	if err == nil || !strings.Contains(err.Error(), `unknown provider "vm"`) || !strings.Contains(err.Error(), "Bad_Name") {
		t.Fatalf("UpWorkbench = %v, want every problem of the configuration", err)
	}
	if clusters != nil || st != nil {
		t.Errorf("clusters %v, state %v after a refused up", clusters, st)
	}
	if _, err := os.Stat(filepath.Join(state, "fleet")); !os.IsNotExist(err) {
		t.Errorf("a refused up made the GitOps system's folder: %v", err)
	}
	if _, _, err := UpWorkbench(context.Background(), Options{}, cfg, false); err == nil {
		t.Error("UpWorkbench without a workbench must be refused")
	}
}
