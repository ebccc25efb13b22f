package catalog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// runEnv is a workbench of its own for a test: nothing of the user's is
// read or touched.
type runEnv struct {
	stateDir, cacheDir, kubeconfig string
}

func newRunEnv(t *testing.T) runEnv {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(dir, "kube", "config"))
	t.Setenv("TETHER_STATE_DIR", "")
	t.Setenv("TETHER_CACHE_DIR", "")
	t.Chdir(t.TempDir()) // no tether.yaml here
	return runEnv{stateDir: filepath.Join(dir, "state"), cacheDir: filepath.Join(dir, "cache"), kubeconfig: filepath.Join(dir, "kube", "config")}
}

func (e runEnv) options(o RunOptions) RunOptions {
	o.StateDir, o.CacheDir, o.Kubeconfig = e.stateDir, e.cacheDir, e.kubeconfig
	return o
}

func TestNewRunnerDefaults(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", "/tmp/some-state")
	r, picked, leftOut, err := NewRunner(context.Background(), RunOptions{CacheDir: "/tmp/c", Names: []string{"prune"}, Keep: true, Engine: noEngineCall(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(picked) != 1 || picked[0].Name != "prune" || leftOut != nil {
		t.Errorf("picked %v, left out %v", picked, leftOut)
	}
	if r.Provider != "" {
		t.Errorf("named scenarios pin no provider: up picks as ever, got %q", r.Provider)
	}
	exe, _ := os.Executable()
	if r.Workbench.Bin != exe || r.Workbench.StateDir != "/tmp/some-state" || r.Workbench.CacheDir != "/tmp/c" || !r.Keep {
		t.Errorf("runner: %+v", r)
	}
}

// noEngineCall is an engine check that must not happen: the provider is
// known without asking Docker.
func noEngineCall(t *testing.T) func(context.Context) error {
	return func(context.Context) error {
		t.Error("the Docker engine was asked, though the provider was known")
		return nil
	}
}

func engineAnswers(answers bool) func(context.Context) error {
	return func(context.Context) error {
		if answers {
			return nil
		}
		return errors.New("no Docker engine answers")
	}
}

func scenarioNames(ss []Scenario) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// ForProvider keeps, in catalog order, what a provider can run, and names
// the rest: embedded-only ones are left out on kind, kind-only ones on
// embedded, both on existing.
func TestForProvider(t *testing.T) {
	all := []Scenario{
		{Name: "anywhere", Labels: []string{LabelFast}},
		{Name: "local-processes", Labels: []string{LabelChaos, LabelEmbeddedOnly}},
		{Name: "real-kubelet", Labels: []string{LabelKindOnly}},
		{Name: "also-anywhere"},
	}
	for _, tc := range []struct {
		provider     string
		run, leftOut []string
	}{
		{"kind", []string{"anywhere", "real-kubelet", "also-anywhere"}, []string{"local-processes"}},
		{"embedded", []string{"anywhere", "local-processes", "also-anywhere"}, []string{"real-kubelet"}},
		{"existing", []string{"anywhere", "also-anywhere"}, []string{"local-processes", "real-kubelet"}},
	} {
		run, leftOut := ForProvider(all, tc.provider)
		if !slices.Equal(scenarioNames(run), tc.run) || !slices.Equal(leftOut, tc.leftOut) {
			t.Errorf("%s: run %v, left out %v; want run %v, left out %v", tc.provider, scenarioNames(run), leftOut, tc.run, tc.leftOut)
		}
	}

	// The real catalog: every scenario lands on exactly one side, and the
	// side follows its labels.
	for _, provider := range []string{"kind", "embedded"} {
		run, leftOut := ForProvider(All(), provider)
		if len(run) == 0 || len(run)+len(leftOut) != len(All()) {
			t.Fatalf("%s: run %v, left out %v of %v", provider, scenarioNames(run), leftOut, Names())
		}
		other := map[string]string{"kind": LabelEmbeddedOnly, "embedded": LabelKindOnly}[provider]
		for _, s := range run {
			if s.HasLabel(other) {
				t.Errorf("%s runs %s, labelled %s", provider, s.Name, other)
			}
		}
		for _, n := range leftOut {
			if s, _ := Lookup(n); !s.HasLabel(other) {
				t.Errorf("%s leaves out %s, which is not labelled %s", provider, n, other)
			}
		}
	}
	if run, _ := ForProvider(All(), "kind"); !slices.Contains(scenarioNames(run), "fleet-rollout") {
		t.Errorf("kind runs %v: fleet-rollout runs on every provider", scenarioNames(run))
	}
	if run, _ := ForProvider(All(), "embedded"); !slices.Contains(scenarioNames(run), "prune") {
		t.Errorf("embedded runs %v: prune is embedded-only", scenarioNames(run))
	}
}

// The provider of a run of every scenario: the workbench's, else
// tether.yaml's, else kind when a Docker engine answers, else embedded;
// Docker is asked only in the last case.
func TestPickProvider(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		running, configured string
		engine              func(context.Context) error
		want                string
	}{
		{"embedded", "", noEngineCall(t), "embedded"},
		{"kind", "embedded", noEngineCall(t), "kind"},
		{"", "existing", noEngineCall(t), "existing"},
		{"", "", engineAnswers(true), "kind"},
		{"", "", engineAnswers(false), "embedded"},
	} {
		if got := pickProvider(ctx, tc.running, tc.configured, tc.engine); got != tc.want {
			t.Errorf("running %q, tether.yaml %q: got %s, want %s", tc.running, tc.configured, got, tc.want)
		}
	}
}

// `scenario run` with no names and no --label runs every scenario for the
// provider: --provider, else the running workbench's, else up's choice. It
// pins that provider for up, lists what it left out, and still touches
// nothing.
func TestNewRunnerRunsEveryScenarioForTheProvider(t *testing.T) {
	writeState := func(t *testing.T, e runEnv, provider string) {
		t.Helper()
		if err := os.MkdirAll(e.stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		st := `{"version":1,"provider":"` + provider + `","clusters":[
  {"name":"hub","role":"hub","provider":"` + provider + `","endpoint":"","kubeconfig":"","created":"2026-01-01T00:00:00Z"}]}`
		if err := os.WriteFile(filepath.Join(e.stateDir, "state.json"), []byte(st), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		flag    string
		running string // recorded in the state folder
		engine  func(context.Context) error
		want    string
	}{
		{"--provider kind", "kind", "", noEngineCall(t), "kind"},
		{"--provider embedded over a running kind", "embedded", "kind", noEngineCall(t), "embedded"},
		{"the running workbench's", "", "kind", noEngineCall(t), "kind"},
		{"the running embedded workbench, Docker or not", "", "embedded", noEngineCall(t), "embedded"},
		{"no workbench, Docker answers", "", "", engineAnswers(true), "kind"},
		{"no workbench, no Docker", "", "", engineAnswers(false), "embedded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRunEnv(t)
			if tc.running != "" {
				writeState(t, e, tc.running)
			}
			before, _ := os.ReadFile(filepath.Join(e.stateDir, "state.json"))
			r, picked, leftOut, err := NewRunner(context.Background(), e.options(RunOptions{Provider: tc.flag, Engine: tc.engine}))
			if err != nil {
				t.Fatal(err)
			}
			wantRun, wantOut := ForProvider(All(), tc.want)
			if !slices.Equal(scenarioNames(picked), scenarioNames(wantRun)) || !slices.Equal(leftOut, wantOut) {
				t.Errorf("picked %v, left out %v; want the %s set %v, left out %v", scenarioNames(picked), leftOut, tc.want, scenarioNames(wantRun), wantOut)
			}
			if r.Provider != tc.want {
				t.Errorf("up would run with --provider %q, want %q: the workbench must be the one the scenarios were picked for", r.Provider, tc.want)
			}
			after, _ := os.ReadFile(filepath.Join(e.stateDir, "state.json"))
			if tc.running == "" {
				if _, err := os.Stat(e.stateDir); !os.IsNotExist(err) {
					t.Error("picking the scenarios created the state folder")
				}
			} else if !bytes.Equal(before, after) {
				t.Error("picking the scenarios changed the workbench's record")
			}
		})
	}

	// Names and labels pick as before, whatever the provider: the runner
	// skips what cannot run, with the reason, as ever.
	e := newRunEnv(t)
	_, picked, leftOut, err := NewRunner(context.Background(), e.options(RunOptions{Label: "intercept", Provider: "kind", Engine: noEngineCall(t)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(picked) == 0 || leftOut != nil {
		t.Errorf("--label intercept on kind: picked %v, left out %v", scenarioNames(picked), leftOut)
	}
	for _, s := range picked {
		if !s.HasLabel(LabelIntercept) {
			t.Errorf("--label intercept picked %s", s.Name)
		}
	}
}
