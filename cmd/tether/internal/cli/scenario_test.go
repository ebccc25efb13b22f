package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/scenarios/catalog"
)

func TestScenarioList(t *testing.T) {
	e := newEnv(t)
	out, _, err := e.run(t, "scenario", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "NAME") || len(lines) != len(catalog.All())+1 {
		t.Fatalf("want a header and a row per scenario:\n%s", out)
	}
	for _, s := range catalog.All() {
		if !strings.Contains(out, s.Name) || !strings.Contains(out, s.Description) {
			t.Errorf("scenario %s missing from the list", s.Name)
		}
	}
}

func TestScenarioRunBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scenario", "run", "no-such"}, `no scenario named "no-such"; known scenarios: `},
		{[]string{"scenario", "run", "fleet-rollout", "--provider", "vm"}, `unknown provider "vm"`},
		{[]string{"scenario", "run", "--label", "fast &&"}, "label expression"},
		{[]string{"scenario", "run", "--label", "nothing-has-this"}, "no scenario matches"},
	} {
		e := newEnv(t)
		_, _, err := e.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error containing %q, got %v", tc.args, tc.want, err)
		}
		if tc.want == `no scenario named "no-such"; known scenarios: ` && !strings.Contains(err.Error(), "fleet-rollout") {
			t.Errorf("an unknown name must list the known ones: %v", err)
		}
		// Bad input touches nothing.
		if _, err := os.Stat(e.stateDir); !os.IsNotExist(err) {
			t.Errorf("%v: the state folder was created", tc.args)
		}
	}
}

func TestScenarioRunnerDefaults(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", "/tmp/some-state")
	g := &globals{cacheDir: "/tmp/c"}
	r, picked, leftOut, err := scenarioRunner(context.Background(), g, []string{"prune"}, scenarioRunFlags{keep: true, engine: noEngineCall(t)})
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

func scenarioNames(ss []catalog.Scenario) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// scenariosFor keeps, in catalog order, what a provider can run, and names
// the rest: embedded-only ones are left out on kind, kind-only ones on
// embedded, both on existing.
func TestScenariosFor(t *testing.T) {
	all := []catalog.Scenario{
		{Name: "anywhere", Labels: []string{catalog.LabelFast}},
		{Name: "local-processes", Labels: []string{catalog.LabelChaos, catalog.LabelEmbeddedOnly}},
		{Name: "real-kubelet", Labels: []string{catalog.LabelKindOnly}},
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
		run, leftOut := scenariosFor(all, tc.provider)
		if !slices.Equal(scenarioNames(run), tc.run) || !slices.Equal(leftOut, tc.leftOut) {
			t.Errorf("%s: run %v, left out %v; want run %v, left out %v", tc.provider, scenarioNames(run), leftOut, tc.run, tc.leftOut)
		}
	}

	// The real catalog: every scenario lands on exactly one side, and the
	// side follows its labels.
	for _, provider := range []string{"kind", "embedded"} {
		run, leftOut := scenariosFor(catalog.All(), provider)
		if len(run) == 0 || len(run)+len(leftOut) != len(catalog.All()) {
			t.Fatalf("%s: run %v, left out %v of %v", provider, scenarioNames(run), leftOut, catalog.Names())
		}
		other := map[string]string{"kind": catalog.LabelEmbeddedOnly, "embedded": catalog.LabelKindOnly}[provider]
		for _, s := range run {
			if s.HasLabel(other) {
				t.Errorf("%s runs %s, labelled %s", provider, s.Name, other)
			}
		}
		for _, n := range leftOut {
			if s, _ := catalog.Lookup(n); !s.HasLabel(other) {
				t.Errorf("%s leaves out %s, which is not labelled %s", provider, n, other)
			}
		}
	}
	if run, _ := scenariosFor(catalog.All(), "kind"); !slices.Contains(scenarioNames(run), "fleet-rollout") {
		t.Errorf("kind runs %v: fleet-rollout runs on every provider", scenarioNames(run))
	}
	if run, _ := scenariosFor(catalog.All(), "embedded"); !slices.Contains(scenarioNames(run), "prune") {
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
func TestScenarioRunnerRunsEveryScenarioForTheProvider(t *testing.T) {
	writeState := func(t *testing.T, e env, provider string) {
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
			e := newEnv(t)
			if tc.running != "" {
				writeState(t, e, tc.running)
			}
			before, _ := os.ReadFile(filepath.Join(e.stateDir, "state.json"))
			g := &globals{stateDir: e.stateDir, cacheDir: e.cacheDir, kubeconfig: e.kubeconfig}
			r, picked, leftOut, err := scenarioRunner(context.Background(), g, nil, scenarioRunFlags{provider: tc.flag, engine: tc.engine})
			if err != nil {
				t.Fatal(err)
			}
			wantRun, wantOut := scenariosFor(catalog.All(), tc.want)
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
	e := newEnv(t)
	g := &globals{stateDir: e.stateDir, cacheDir: e.cacheDir, kubeconfig: e.kubeconfig}
	_, picked, leftOut, err := scenarioRunner(context.Background(), g, nil, scenarioRunFlags{label: "intercept", provider: "kind", engine: noEngineCall(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(picked) == 0 || leftOut != nil {
		t.Errorf("--label intercept on kind: picked %v, left out %v", scenarioNames(picked), leftOut)
	}
	for _, s := range picked {
		if !s.HasLabel(catalog.LabelIntercept) {
			t.Errorf("--label intercept picked %s", s.Name)
		}
	}
}

// The run of every scenario says, before it starts, which provider it is
// for and, in one line, what it leaves out.
func TestAnnounceRun(t *testing.T) {
	r := &catalog.Runner{Workbench: catalog.WorkbenchPaths{StateDir: "/s"}, Provider: "kind"}
	picked := []catalog.Scenario{{Name: "fleet-rollout"}, {Name: "drift-self-heal"}}
	var buf bytes.Buffer
	announceRun(&buf, r, picked, []string{"prune", "bad-manifest", "debug-principal"}, true, "/w")
	want := "not for kind: prune, bad-manifest, debug-principal\n" +
		"running 2 scenarios (every one for the kind provider) on the workbench in /s; scenario files and logs in /w\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	announceRun(&buf, &catalog.Runner{Workbench: catalog.WorkbenchPaths{StateDir: "/s"}}, picked[:1], nil, false, "/w")
	if want := "running 1 scenario on the workbench in /s; scenario files and logs in /w\n"; buf.String() != want {
		t.Errorf("named run: got %q, want %q", buf.String(), want)
	}
}

func TestLineObserver(t *testing.T) {
	var buf bytes.Buffer
	o := newLineObserver(&buf, false)
	o.StepStarted("workbench", "tether up")
	o.StepDone("workbench", "tether up", 2*time.Second, nil)
	o.ScenarioStarted("prune", []string{"a", "b"})
	o.StepStarted("prune", "a")
	o.Log("prune", "hidden without -v")
	o.StepDone("prune", "a", 1200*time.Millisecond, nil)
	o.StepStarted("prune", "b")
	o.StepDone("prune", "b", time.Second, errors.New("expected x, saw y"))
	o.StepStarted("prune", "clean up: delete it")
	o.StepDone("prune", "clean up: delete it", 0, nil)
	o.ScenarioDone(catalog.Result{Name: "prune", Status: catalog.Failed, Duration: 3 * time.Second, Reason: `step "b": expected x, saw y`, Logs: []string{"/s/fleet/logs"}})
	o.ScenarioDone(catalog.Result{Name: "intercept-global", Status: catalog.Skipped, Reason: "needs embedded"})
	want := `[workbench] tether up
[workbench]   ok (2s)
== prune (2 steps)
[prune] step 1/2: a
[prune]   ok (1.2s)
[prune] step 2/2: b
[prune]   FAILED after 1s: expected x, saw y
[prune] clean up: delete it
[prune]   ok (0s)
FAIL prune (3s): step "b": expected x, saw y
     where to look: /s/fleet/logs
SKIP intercept-global: needs embedded
`
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	o = newLineObserver(&buf, true)
	o.Log("prune", "shown with -v")
	if buf.String() != "[prune]   | shown with -v\n" {
		t.Errorf("verbose log line: %q", buf.String())
	}
}

func TestVerdict(t *testing.T) {
	var buf bytes.Buffer
	err := verdict(&buf, []catalog.Result{{Name: "a", Status: catalog.Passed}, {Name: "b", Status: catalog.Failed}, {Name: "c", Status: catalog.Skipped}})
	if err == nil || !strings.Contains(err.Error(), "1 of 3 scenarios failed: b") {
		t.Errorf("err %v", err)
	}
	if !strings.Contains(buf.String(), "1 passed, 1 failed, 1 skipped") || !strings.Contains(buf.String(), "FAILED   b") {
		t.Errorf("summary:\n%s", buf.String())
	}
	buf.Reset()
	if err := verdict(&buf, []catalog.Result{{Name: "a", Status: catalog.Passed}}); err != nil {
		t.Error(err)
	}
}

func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := writeReport(path, []catalog.Result{{Name: "a", Status: catalog.Passed}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `<testcase name="a"`) {
		t.Errorf("report:\n%s", b)
	}
	if err := writeReport(filepath.Join(t.TempDir(), "no", "such", "dir.xml"), nil); err == nil {
		t.Error("an unwritable report path must be an error")
	}
}
