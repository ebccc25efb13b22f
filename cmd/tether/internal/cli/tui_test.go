package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/tui"
)

func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
	if interactive(&globals{out: &bytes.Buffer{}}) {
		t.Error("captured output must never get the UI")
	}
}

func TestTUIOptions(t *testing.T) {
	e := newEnv(t)
	t.Chdir(t.TempDir()) // no tether.yaml here
	g := &globals{stateDir: e.stateDir, cacheDir: e.cacheDir, kubeconfig: e.kubeconfig}
	opts, closeLog, err := tuiOptions(g)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	if want := filepath.Join(e.stateDir, "tui.log"); opts.LogFile != want {
		t.Errorf("log file %q, want %q", opts.LogFile, want)
	}
	opts.Logger.Info("hello from the test")
	if data, err := os.ReadFile(opts.LogFile); err != nil || !bytes.Contains(data, []byte("hello from the test")) {
		t.Errorf("logger does not write the log file: %q, %v", data, err)
	}
	if opts.Workbench == nil || opts.Workbench.StateDir() != e.stateDir || opts.Reporter == nil {
		t.Errorf("workbench or reporter not set up: %+v", opts)
	}
	// What `u` brings up on an empty workbench with no tether.yaml.
	recorded, err := opts.Workbench.RecordedConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.BaseConfig("", recorded)
	if got, want := len(cfg.Spokes), len(cluster.DefaultConfig().Spokes); err != nil || got != want || cfg.Hub.Name != "hub" {
		t.Errorf("config = %+v, %v; want the default", cfg, err)
	}
	// The UI's actions call the commands' domain functions on this
	// workbench: on an empty one they fail the way the commands do.
	src := tui.WorkbenchSource(opts, opts.Reporter, opts.Logger)
	if err := src.RemoveSpoke(context.Background(), "spoke-1"); err == nil || !strings.Contains(err.Error(), "no clusters") {
		t.Errorf("RemoveSpoke on an empty workbench = %v", err)
	}
	_, _, err = src.StartIntercept(context.Background(), tui.InterceptSpec{Cluster: "nowhere", Namespace: "default", Service: "web", Port: 80, To: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), `no cluster "nowhere"`) {
		t.Errorf("StartIntercept on an unknown cluster = %v", err)
	}
}
