package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tether-dev/tether/cluster"
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
}

func TestTUIConfigReadsTetherYAML(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("tether.yaml", []byte("provider: embedded\nhub:\n  name: main\nspokes:\n  - name: eu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := tuiConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provider != "embedded" || cfg.Hub.Name != "main" || len(cfg.Spokes) != 1 || cfg.Spokes[0].Name != "eu" {
		t.Errorf("config = %+v", cfg)
	}
	if err := os.WriteFile("tether.yaml", []byte("hub: {name: main}\nspokez: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tuiConfig(); err == nil {
		t.Error("a typo in tether.yaml should be an error")
	}
}
