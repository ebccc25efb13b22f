package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
