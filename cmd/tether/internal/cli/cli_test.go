package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// env is one isolated set of folders for a CLI run.
type env struct {
	stateDir, cacheDir, kubeconfig string
}

func newEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	e := env{
		stateDir:   filepath.Join(dir, "state"),
		cacheDir:   filepath.Join(dir, "cache"),
		kubeconfig: filepath.Join(dir, "kube", "config"),
	}
	// The existing provider's doctor check reads $KUBECONFIG.
	t.Setenv("KUBECONFIG", e.kubeconfig)
	t.Setenv("TETHER_STATE_DIR", "")
	t.Setenv("TETHER_CACHE_DIR", "")
	return e
}

// run executes the CLI with the isolating flags in front of args.
func (e env) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errw bytes.Buffer
	cmd := New(&out, &errw)
	full := append([]string{"--state-dir", e.stateDir, "--cache-dir", e.cacheDir, "--kubeconfig", e.kubeconfig}, args...)
	cmd.SetArgs(full)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errw.String(), err
}

func (e env) assertNothingMade(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(e.stateDir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("state.json exists after a failed up: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "clusters")); !os.IsNotExist(err) {
		t.Errorf("cluster folders exist after a failed up: %v", err)
	}
	if _, err := os.Stat(e.cacheDir); !os.IsNotExist(err) {
		t.Errorf("a failed up wrote to the cache folder: %v", err)
	}
	if _, err := os.Stat(e.kubeconfig); !os.IsNotExist(err) {
		t.Errorf("a failed up touched the kubeconfig: %v", err)
	}
}

func TestUpRejectsBadInput(t *testing.T) {
	badConfig := filepath.Join(t.TempDir(), "tether.yaml")
	if err := os.WriteFile(badConfig, []byte("spokess:\n- name: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown provider", []string{"up", "--provider", "nope"}, []string{`unknown provider "nope"`, "kind", "embedded", "existing"}},
		{"spoke and spokes", []string{"up", "--spoke", "a", "--spokes", "2"}, []string{"--spoke and --spokes both given"}},
		{"negative spokes", []string{"up", "--spokes", "-1"}, []string{"--spokes -1", "0 to 50"}},
		{"too many spokes", []string{"up", "--spokes", "51"}, []string{"--spokes 51", "0 to 50"}},
		{"context without =", []string{"up", "--provider", "existing", "--context", "bad"}, []string{`--context "bad"`, "<cluster>=<kubeconfig context>"}},
		{"context with empty side", []string{"up", "--context", "hub="}, []string{`--context "hub="`, "<cluster>=<kubeconfig context>"}},
		{"context of unknown cluster", []string{"up", "--context", "nosuch=ctx"}, []string{`no cluster named "nosuch"`, "clusters: hub, spoke-1, spoke-2"}},
		{"context names the renamed clusters", []string{"up", "--hub", "central", "--spoke", "eu", "--context", "hub=ctx"}, []string{"clusters: central, eu"}},
		{"bad spoke name", []string{"up", "--spoke", "Bad_Name"}, []string{`"Bad_Name"`, "not DNS-safe"}},
		{"bad hub name", []string{"up", "--hub", "-x"}, []string{`"-x"`, "not DNS-safe"}},
		{"duplicate spokes", []string{"up", "--spoke", "a", "--spoke", "a"}, []string{`"a" is used twice`}},
		{"existing without contexts", []string{"up", "--provider", "existing", "--spokes", "0"}, []string{`cluster "hub"`, "--context hub=<context>"}},
		{"config with unknown field", []string{"up", "--config", badConfig}, []string{badConfig, "spokess"}},
		{"missing config", []string{"up", "--config", badConfig + ".missing"}, []string{badConfig + ".missing"}},
		{"arguments", []string{"up", "extra"}, []string{"extra"}},
		{"node image on embedded", []string{"up", "--provider", "embedded", "--node-image", "kindest/node:v1.37.0"}, []string{"--node-image", "kind provider", "embedded"}},
		{"node image not a reference", []string{"up", "--node-image", "Not An Image"}, []string{`"Not An Image" is not an image reference`}},
		{"prepare: node image on embedded", []string{"prepare", "--provider", "embedded", "--node-image", "kindest/node:v1.37.0"}, []string{"--node-image is for --provider kind"}},
		{"prepare: node image not a reference", []string{"prepare", "--node-image", "Not An Image"}, []string{"not an image reference"}},
		{"prepare: unknown provider", []string{"prepare", "--provider", "existing"}, []string{`--provider "existing"`, "embedded", "kind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			out, _, err := e.run(t, tt.args...)
			if err == nil {
				t.Fatalf("tether %s succeeded, want an error; output:\n%s", strings.Join(tt.args, " "), out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(out, "The workbench is up") {
				t.Errorf("a failed up printed success:\n%s", out)
			}
			e.assertNothingMade(t)
		})
	}
}

func TestUpContextFlagAppliesToNamedCluster(t *testing.T) {
	// With contexts for every cluster, validation passes; the run then fails
	// because the kubeconfig does not hold them. That failure must come
	// from the existing provider, not from flag parsing.
	e := newEnv(t)
	_, _, err := e.run(t, "up", "--provider", "existing", "--spokes", "0", "--context", "hub=nosuch-ctx")
	if err == nil {
		t.Fatal("up with a context that is not in the kubeconfig succeeded")
	}
	if !strings.Contains(err.Error(), "existing provider") || !strings.Contains(err.Error(), e.kubeconfig) {
		t.Errorf("error %q should come from the existing provider and name %s", err, e.kubeconfig)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("state.json exists after a failed up: %v", err)
	}
}

func TestStatusEmpty(t *testing.T) {
	e := newEnv(t)
	out, _, err := e.run(t, "status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, w := range []string{"No workbench", e.stateDir, "tether up"} {
		if !strings.Contains(out, w) {
			t.Errorf("status output lacks %q:\n%s", w, out)
		}
	}
}

func TestBareCommandShowsStatusAndUsage(t *testing.T) {
	e := newEnv(t)
	out, _, err := e.run(t)
	if err != nil {
		t.Fatalf("tether: %v", err)
	}
	for _, w := range []string{"No workbench", "Usage:", "up", "down", "status", "doctor"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestDownEmpty(t *testing.T) {
	e := newEnv(t)
	out, _, err := e.run(t, "down")
	if err != nil {
		t.Fatalf("down: %v", err)
	}
	if strings.TrimSpace(out) != "The workbench is down." {
		t.Errorf("down output = %q, want %q", out, "The workbench is down.")
	}
	if _, err := os.Stat(e.kubeconfig); !os.IsNotExist(err) {
		t.Errorf("down created the kubeconfig: %v", err)
	}
}

func TestDoctor(t *testing.T) {
	e := newEnv(t)
	// The real Docker check runs; with no engine here it fails fast and
	// the embedded provider (the go command runs this test) is usable.
	out, _, err := e.run(t, "doctor")
	// Warnings under a provider are indented; the provider lines are not.
	all := slices.DeleteFunc(strings.Split(strings.TrimRight(out, "\n"), "\n"), func(l string) bool { return strings.HasPrefix(l, "    ! ") })
	machine := slices.Index(all, "machine:")
	if len(all) < 5 || all[0] != "providers:" || machine != 4 {
		t.Fatalf("doctor printed no providers section with one line per provider, then the machine checks:\n%s", out)
	}
	lines := all[1:4]
	for _, name := range []string{"go", "control plane", "disk", "state folder", "tmux", "dlv"} {
		if !strings.Contains(strings.Join(all[machine:], "\n"), " "+name+" ") {
			t.Errorf("no %s check in:\n%s", name, out)
		}
	}
	for i, p := range []string{"kind", "embedded", "existing"} {
		fields := strings.Fields(lines[i])
		if len(fields) < 3 || (fields[0] != "✓" && fields[0] != "✗") || fields[1] != p {
			t.Errorf("line %d = %q, want a mark then %s and a detail", i, lines[i], p)
		}
	}
	if strings.Count(out, "(default)") != 1 {
		t.Errorf("doctor marks %d defaults, want 1:\n%s", strings.Count(out, "(default)"), out)
	}
	if !strings.HasPrefix(lines[1], "✓") {
		t.Errorf("embedded is not usable:\n%s", out)
	}
	if err != nil {
		t.Errorf("doctor failed although embedded is usable: %v", err)
	}
	if _, serr := os.Stat(e.cacheDir); !os.IsNotExist(serr) {
		t.Errorf("doctor wrote to the cache folder: %v", serr)
	}
}

func TestDoctorStateNotWritable(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.stateDir, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := e.run(t, "doctor")
	if err == nil || !strings.Contains(err.Error(), "no cluster provider can run here") {
		t.Fatalf("doctor = %v, want it to fail when nothing is usable:\n%s", err, out)
	}
	if strings.Count(out, "✗") < 4 || !strings.Contains(out, "not writable") {
		t.Errorf("doctor output should mark every provider unusable and say why:\n%s", out)
	}
}

// pflag takes the first `quoted` word of a flag's usage as the placeholder
// of its value in --help, so a usage that quotes a command (`tether up`)
// shows "--agent-image tether up". Every placeholder is one word.
func TestFlagPlaceholdersAreOneWord(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " \t") {
				t.Errorf("%s --%s: --help shows %q as its value; quote only the placeholder in its usage", cmd.CommandPath(), f.Name, name)
			}
		})
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(New(io.Discard, io.Discard))
}

func TestInterceptStartHelpNamesTheImage(t *testing.T) {
	e := newEnv(t)
	out, _, err := e.run(t, "intercept", "start", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "--agent-image image ") || !strings.Contains(out, "which 'tether up' loads") {
		t.Errorf("--agent-image reads wrong in --help:\n%s", out)
	}
}
