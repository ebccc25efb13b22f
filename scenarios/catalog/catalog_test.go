package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/gitops/fleet"
)

func TestCatalogNamesAreTheContract(t *testing.T) {
	want := []string{"fleet-rollout", "drift-self-heal", "prune", "bad-manifest", "agent-restart", "principal-restart",
		"network-partition", "sync-while-disconnected", "agent-isolation", "intercept-global", "intercept-personal",
		"intercept-outbound", "intercept-crash-cleanup", "intercept-sample", "hub-app-commands", "debug-principal"}
	seen := map[string]bool{}
	for _, s := range All() {
		if seen[s.Name] {
			t.Errorf("scenario %q defined twice", s.Name)
		}
		seen[s.Name] = true
		if s.Description == "" || strings.Contains(s.Description, "\n") {
			t.Errorf("scenario %q: the description must be one line", s.Name)
		}
		if len(s.Labels) == 0 || s.Steps == nil || s.Timeout == 0 {
			t.Errorf("scenario %q: needs labels, steps and a timeout", s.Name)
		}
	}
	for _, n := range want {
		if !seen[n] {
			t.Errorf("scenario %q is missing", n)
		}
	}
}

func TestSelect(t *testing.T) {
	got, err := Select([]string{"prune", "fleet-rollout"}, "")
	if err != nil || len(got) != 2 || got[0].Name != "prune" || got[1].Name != "fleet-rollout" {
		t.Fatalf("Select by name: %v %v", names(got), err)
	}
	_, err = Select([]string{"nope"}, "")
	if err == nil || !strings.Contains(err.Error(), `no scenario named "nope"`) || !strings.Contains(err.Error(), "fleet-rollout") {
		t.Fatalf("unknown name: want an error listing the known names, got %v", err)
	}
	got, err = Select(nil, "intercept && !chaos")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if !s.HasLabel(LabelIntercept) || s.HasLabel(LabelChaos) {
			t.Errorf("label filter let %s through (%v)", s.Name, s.Labels)
		}
	}
	if len(got) != 4 {
		t.Errorf("intercept && !chaos: got %v", names(got))
	}
	if _, err := Select(nil, "fast &&"); err == nil {
		t.Error("a broken label expression must be an error")
	}
	if _, err := Select(nil, "no-such-label"); err == nil || !strings.Contains(err.Error(), "labels in use") {
		t.Errorf("a filter matching nothing: got %v", err)
	}
}

func names(ss []Scenario) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// recorder is an Observer that remembers every call.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}
func (r *recorder) ScenarioStarted(s string, steps []string) {
	r.add("start %s %s", s, strings.Join(steps, "|"))
}
func (r *recorder) StepStarted(s, step string) { r.add("step %s %s", s, step) }
func (r *recorder) StepDone(s, step string, _ time.Duration, err error) {
	r.add("done %s %s %v", s, step, err)
}
func (r *recorder) Log(s, msg string)     { r.add("log %s %s", s, msg) }
func (r *recorder) ScenarioDone(x Result) { r.add("end %s %s", x.Name, x.Status) }

// fakeWorkbench writes a fleet record so RunScenario finds a system up,
// without any cluster.
func fakeWorkbench(t *testing.T, provider string) WorkbenchPaths {
	t.Helper()
	dir := t.TempDir()
	st := fleet.State{Provider: provider, Spokes: []string{"spoke-1", "spoke-2"}}
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Join(dir, "fleet"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fleet", "fleet.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return WorkbenchPaths{Bin: "/bin/false", StateDir: dir, CacheDir: t.TempDir(), Kubeconfig: filepath.Join(dir, "kubeconfig")}
}

func fakeScenario(failAt int) Scenario {
	return Scenario{Name: "fake", Description: "a fake", Labels: []string{LabelFast}, Timeout: time.Minute,
		Steps: func(e *Env) []Step {
			e.Cleanup("undo one", func(context.Context) error { return nil })
			e.Cleanup("undo two", func(context.Context) error { return errors.New("left a thing") })
			var steps []Step
			for i := range 3 {
				steps = append(steps, Step{Name: fmt.Sprintf("step %d", i), Run: func(context.Context) error {
					e.Logf("in step %d", i)
					if i == failAt {
						return errors.New("expected 3 replicas, saw 2; see agent-spoke-1.log")
					}
					return nil
				}})
			}
			return steps
		}}
}

func TestRunScenarioReportsSteps(t *testing.T) {
	rec := &recorder{}
	r := &Runner{Workbench: fakeWorkbench(t, "embedded"), Observer: rec, WorkDir: t.TempDir()}
	res := r.RunScenario(context.Background(), fakeScenario(1))
	if res.Status != Failed || res.FailedStep != "step 1" || !strings.Contains(res.Reason, "expected 3 replicas") {
		t.Fatalf("result: %+v", res)
	}
	if len(res.Steps) != 3 || res.Steps[2].Status != Skipped {
		t.Errorf("steps: %+v", res.Steps)
	}
	if len(res.CleanupErrors) != 1 || !strings.Contains(res.CleanupErrors[0], "left a thing") {
		t.Errorf("cleanup errors: %v", res.CleanupErrors)
	}
	want := []string{
		"start fake step 0|step 1|step 2",
		"step fake step 0", "log fake in step 0", "done fake step 0 <nil>",
		"step fake step 1", "log fake in step 1", "done fake step 1 expected 3 replicas, saw 2; see agent-spoke-1.log",
		// Cleanups run last registered first.
		"step fake clean up: undo two", "done fake clean up: undo two left a thing",
		"step fake clean up: undo one", "done fake clean up: undo one <nil>",
		"end fake failed",
	}
	if strings.Join(rec.events, "\n") != strings.Join(want, "\n") {
		t.Errorf("observer saw:\n%s\nwant:\n%s", strings.Join(rec.events, "\n"), strings.Join(want, "\n"))
	}
}

func TestRunScenarioPassesAndKeep(t *testing.T) {
	r := &Runner{Workbench: fakeWorkbench(t, "embedded"), WorkDir: t.TempDir()}
	if res := r.RunScenario(context.Background(), fakeScenario(-1)); res.Status != Passed || res.Reason != "" {
		t.Fatalf("want passed: %+v", res)
	}
	rec := &recorder{}
	r = &Runner{Workbench: fakeWorkbench(t, "embedded"), WorkDir: t.TempDir(), Keep: true, Observer: rec}
	res := r.RunScenario(context.Background(), fakeScenario(0))
	if res.Status != Failed || len(res.CleanupErrors) != 0 {
		t.Fatalf("want failed without cleanups: %+v", res)
	}
	if !strings.Contains(strings.Join(rec.events, "\n"), "log fake --keep: not cleaning up: undo two") {
		t.Errorf("--keep must say which cleanups it skipped: %v", rec.events)
	}
}

func TestRunScenarioPanicFailsTheStep(t *testing.T) {
	r := &Runner{Workbench: fakeWorkbench(t, "embedded"), WorkDir: t.TempDir()}
	s := Scenario{Name: "panics", Labels: []string{LabelFast}, Steps: func(*Env) []Step {
		return []Step{{Name: "boom", Run: func(context.Context) error { panic("oops") }}}
	}}
	if res := r.RunScenario(context.Background(), s); res.Status != Failed || !strings.Contains(res.Reason, "panic: oops") {
		t.Fatalf("%+v", res)
	}
}

func TestRunScenarioSkipsByProvider(t *testing.T) {
	r := &Runner{Workbench: fakeWorkbench(t, "kind"), WorkDir: t.TempDir()}
	s := fakeScenario(-1)
	s.Labels = []string{LabelEmbeddedOnly}
	if res := r.RunScenario(context.Background(), s); res.Status != Skipped || !strings.Contains(res.Reason, "embedded provider") {
		t.Fatalf("%+v", res)
	}
}

func TestRunScenarioWithoutSystem(t *testing.T) {
	r := &Runner{Workbench: WorkbenchPaths{Bin: "/bin/false", StateDir: t.TempDir()}, WorkDir: t.TempDir()}
	res := r.RunScenario(context.Background(), fakeScenario(-1))
	if res.Status != Failed || !strings.Contains(res.Reason, "run `tether up`") {
		t.Fatalf("%+v", res)
	}
}

func TestWriteJUnit(t *testing.T) {
	results := []Result{
		{Name: "fleet-rollout", Labels: []string{"fleet", "fast"}, Status: Passed, Duration: 1500 * time.Millisecond,
			Steps: []StepResult{{Name: "commit", Status: Passed, Duration: time.Second}}},
		{Name: "prune", Labels: []string{"gitops"}, Status: Failed, Duration: 2 * time.Second, Reason: "step \"x\": expected a, saw b\nmore",
			Logs: []string{"/state/fleet/logs"}, Steps: []StepResult{{Name: "x", Status: Failed, Err: "expected a, saw b"}}},
		{Name: "intercept-global", Status: Skipped, Reason: "needs the embedded provider"},
	}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, results); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Time     string `xml:"time,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Time      string `xml:"time,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				SystemOut string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	if !strings.HasPrefix(buf.String(), "<?xml") {
		t.Error("no XML header")
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("suites: %+v", doc.Suites)
	}
	s := doc.Suites[0]
	if s.Tests != 3 || s.Failures != 1 || s.Skipped != 1 || s.Time != "3.500" || len(s.Cases) != 3 {
		t.Fatalf("suite: %+v", s)
	}
	if c := s.Cases[0]; c.Name != "fleet-rollout" || c.Classname != "scenarios.fleet.fast" || c.Time != "1.500" || c.Failure != nil || !strings.Contains(c.SystemOut, "passed  commit") {
		t.Errorf("passed case: %+v", c)
	}
	if c := s.Cases[1]; c.Failure == nil || c.Failure.Message != `step "x": expected a, saw b` || !strings.Contains(c.Failure.Body, "where to look: /state/fleet/logs") {
		t.Errorf("failed case: %+v", c)
	}
	if c := s.Cases[2]; c.Skipped == nil || c.Skipped.Message != "needs the embedded provider" {
		t.Errorf("skipped case: %+v", c)
	}
}

func TestLineLog(t *testing.T) {
	rec := &recorder{}
	l := &lineLog{obs: rec, scenario: "s"}
	fmt.Fprint(l, "one\ntw")
	fmt.Fprint(l, "o\n")
	if got := strings.Join(rec.events, ","); got != "log s one,log s two" {
		t.Errorf("got %s", got)
	}
}

func TestSetFlag(t *testing.T) {
	got := setFlag([]string{"agent", "--principal", "a:1", "-v"}, "--principal", "b:2")
	if strings.Join(got, " ") != "agent --principal b:2 -v" || flagValue(got, "--principal") != "b:2" {
		t.Errorf("got %v", got)
	}
}

// fakeTether is a shell script standing in for the tether binary: it
// appends its arguments to a file, so Up and Down can be checked without
// clusters.
func fakeTether(t *testing.T) (bin, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	bin = filepath.Join(dir, "tether")
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, calls
}

func TestUpDownReusesAnExistingWorkbench(t *testing.T) {
	wb := fakeWorkbench(t, "embedded")
	bin, calls := fakeTether(t)
	wb.Bin = bin
	r := &Runner{Workbench: wb, Provider: "embedded"}
	if err := r.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(calls)
	got := strings.TrimSpace(string(b))
	// Reattach with a bare up (it keeps the running spokes); never down a
	// workbench the runner did not make.
	if !strings.HasSuffix(got, " up --provider embedded") || strings.Contains(got, "down") {
		t.Errorf("calls:\n%s", got)
	}
}

func TestUpDownOfANewWorkbench(t *testing.T) {
	bin, calls := fakeTether(t)
	wb := WorkbenchPaths{Bin: bin, StateDir: t.TempDir(), CacheDir: t.TempDir(), Kubeconfig: filepath.Join(t.TempDir(), "kc")}
	r := &Runner{Workbench: wb}
	if err := r.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(calls)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " up") || !strings.HasSuffix(lines[1], " down") {
		t.Errorf("calls:\n%s", b)
	}
	// --keep leaves it.
	os.Remove(calls)
	r = &Runner{Workbench: wb, Keep: true}
	_ = r.Up(context.Background())
	_ = r.Down(context.Background())
	if b, _ := os.ReadFile(calls); strings.Contains(string(b), "down") {
		t.Errorf("--keep took the workbench down:\n%s", b)
	}
}

func TestUpFailureSaysWhere(t *testing.T) {
	wb := WorkbenchPaths{Bin: "/bin/false", StateDir: t.TempDir()}
	r := &Runner{Workbench: wb}
	err := r.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), "tether up failed") || !strings.Contains(err.Error(), wb.StateDir) {
		t.Errorf("got %v", err)
	}
}

func TestLineLogConcurrentWriters(t *testing.T) {
	rec := &recorder{}
	l := &lineLog{obs: rec, scenario: "s"}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprint(l, "line\n")
			}
		}()
	}
	wg.Wait()
	if len(rec.events) != 200 {
		t.Errorf("got %d lines, want 200", len(rec.events))
	}
}
