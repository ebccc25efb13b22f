package cli

import (
	"bytes"
	"context"
	"log/slog"
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
	if got, want := len(opts.Config.Spokes), len(cluster.DefaultConfig().Spokes); got != want || opts.Config.Hub.Name != "hub" {
		t.Errorf("config = %+v, want the default", opts.Config)
	}
	// The actions that live in this package reach the UI.
	if opts.AddSpoke == nil || opts.RemoveSpoke == nil || opts.StartIntercept == nil {
		t.Error("the spoke and intercept actions are not wired")
	}
	// On an empty workbench they fail the way the commands do, and what
	// they would print goes to the log, not the screen.
	if err := opts.RemoveSpoke(context.Background(), "spoke-1"); err == nil || !strings.Contains(err.Error(), "no clusters") {
		t.Errorf("RemoveSpoke on an empty workbench = %v", err)
	}
	_, err = opts.StartIntercept(context.Background(), tui.InterceptSpec{Cluster: "nowhere", Namespace: "default", Service: "web", Port: 80, To: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), `no cluster "nowhere"`) {
		t.Errorf("StartIntercept on an unknown cluster = %v", err)
	}
}

func TestLogWriter(t *testing.T) {
	var buf bytes.Buffer
	w := logWriter{slog.New(slog.NewTextHandler(&buf, nil))}
	if n, err := w.Write([]byte("cleaned up leftovers\nsecond line\n")); err != nil || n != 33 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := strings.Count(buf.String(), "level=INFO"); got != 2 || !strings.Contains(buf.String(), `msg="second line"`) {
		t.Errorf("log = %q, want one record per line", buf.String())
	}
}

func TestTUIConfigReadsTetherYAML(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("tether.yaml", []byte("provider: embedded\nhub:\n  name: main\nspokes:\n  - name: eu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := tuiConfig(cluster.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provider != "embedded" || cfg.Hub.Name != "main" || len(cfg.Spokes) != 1 || cfg.Spokes[0].Name != "eu" {
		t.Errorf("config = %+v", cfg)
	}
	if err := os.WriteFile("tether.yaml", []byte("hub: {name: main}\nspokez: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tuiConfig(cluster.Config{}); err == nil {
		t.Error("a typo in tether.yaml should be an error")
	}
}

func TestBaseConfigKeepsTheRunningWorkbenchsSpokes(t *testing.T) {
	t.Chdir(t.TempDir())
	recorded := cluster.Config{Provider: "embedded", Hub: cluster.ClusterConfig{Name: "hub"},
		Spokes: []cluster.ClusterConfig{{Name: "spoke-1"}, {Name: "spoke-2"}, {Name: "spoke-3"}}}
	cfg, err := baseConfig("", recorded)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spokes) != 3 || cfg.Spokes[2].Name != "spoke-3" {
		t.Errorf("a bare up on a workbench with an added spoke would bring up %+v", cfg.Spokes)
	}
	cfg, err = baseConfig("", cluster.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spokes) != 2 || cfg.Hub.Name != "hub" {
		t.Errorf("without a workbench the default is a hub and two spokes, got %+v", cfg)
	}
	if err := os.WriteFile("tether.yaml", []byte("hub:\n  name: main\nspokes:\n  - name: eu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = baseConfig("", recorded)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hub.Name != "main" || len(cfg.Spokes) != 1 {
		t.Errorf("tether.yaml must win over the running workbench, got %+v", cfg)
	}
}
