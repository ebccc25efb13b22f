package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/scenarios/harness"
)

// WorkbenchPaths names the workbench scenarios run against: the tether
// binary and the folders and kubeconfig it is run with. It is only names;
// harness.Driver is what runs commands against them.
type WorkbenchPaths struct {
	// Bin is the tether binary scenarios run (the CLI passes its own
	// executable, the Ginkgo suite the one it built).
	Bin        string
	StateDir   string
	CacheDir   string
	Kubeconfig string
}

// Runner brings a workbench up, runs scenarios on it and takes it down.
// The zero value is not usable: set Workbench.
type Runner struct {
	Workbench WorkbenchPaths
	// Provider is passed to `tether up --provider`; empty lets up pick
	// (the provider already running, else kind with Docker, else embedded).
	Provider string
	// UpArgs are extra `tether up` arguments (--spokes, --context ...).
	// Scenarios need the hub and at least two spokes.
	UpArgs []string
	// Keep leaves the workbench running after the run, and after a failed
	// scenario skips its cleanups and stops the run, so what it made can be
	// inspected.
	Keep bool
	// WorkDir holds each scenario's files and the logs of processes it
	// started; it is kept after the run. Empty: a new temporary folder.
	WorkDir  string
	Observer Observer

	// created says this runner's Up made the workbench, so Down may
	// remove it: a workbench that was already running is the user's.
	created bool
}

// Up brings the workbench and the GitOps system up with `tether up`, or
// reattaches to the one already running in the state folder (up is
// idempotent and restarts what died). Only a workbench Up created is taken
// down by Down.
func (r *Runner) Up(ctx context.Context) error {
	if r.Workbench.Bin == "" {
		return errors.New("scenario runner: no tether binary given")
	}
	st, err := loadFleet(r.Workbench)
	if err != nil {
		return err
	}
	existed := st != nil
	args := []string{"up"}
	if r.Provider != "" {
		args = append(args, "--provider", r.Provider)
	}
	args = append(args, r.UpArgs...)
	obs := r.observer()
	step := "tether " + strings.Join(args, " ")
	if existed {
		step += " (reattach to the running workbench)"
	}
	obs.StepStarted(workbenchScenario, step)
	start := time.Now()
	res := r.driver(workbenchScenario).Run(ctx, args...)
	if res.ExitCode != 0 {
		err = fmt.Errorf("tether up failed (exit %d): %s; state folder %s", res.ExitCode, lastLines(res.Stderr, 5), r.Workbench.StateDir)
	}
	obs.StepDone(workbenchScenario, step, time.Since(start), err)
	if err != nil {
		return err
	}
	r.created = !existed
	return nil
}

// Down takes the workbench down if Up created it and Keep is off.
func (r *Runner) Down(ctx context.Context) error {
	if !r.created || r.Keep {
		return nil
	}
	obs := r.observer()
	obs.StepStarted(workbenchScenario, "tether down")
	start := time.Now()
	res := r.driver(workbenchScenario).Run(ctx, "down")
	var err error
	if res.ExitCode != 0 {
		err = fmt.Errorf("tether down failed (exit %d): %s", res.ExitCode, lastLines(res.Stderr, 5))
	}
	obs.StepDone(workbenchScenario, "tether down", time.Since(start), err)
	if err == nil {
		r.created = false
	}
	return err
}

// Run brings the workbench up, runs scenarios in order and takes the
// workbench down (see Up, Down and Keep). The error is about the
// workbench; scenario failures are in the results.
func (r *Runner) Run(ctx context.Context, scenarios []Scenario) ([]Result, error) {
	if err := r.Up(ctx); err != nil {
		return nil, err
	}
	var results []Result
	for i, s := range scenarios {
		res := r.RunScenario(ctx, s)
		results = append(results, res)
		if ctx.Err() != nil || (r.Keep && res.Status == Failed) {
			for _, rest := range scenarios[i+1:] {
				skip := Result{Name: rest.Name, Labels: rest.Labels, Status: Skipped, Reason: "not run: an earlier scenario failed and --keep left its state for inspection"}
				if ctx.Err() != nil {
					skip.Reason = "not run: interrupted"
				}
				r.observer().ScenarioDone(skip)
				results = append(results, skip)
			}
			break
		}
	}
	return results, r.Down(context.WithoutCancel(ctx))
}

// WorkDirPath is where scenario files and logs go (created on first use).
func (r *Runner) WorkDirPath() (string, error) {
	if r.WorkDir == "" {
		d, err := os.MkdirTemp("", "tether-scenarios-")
		if err != nil {
			return "", fmt.Errorf("make the scenario work folder: %w (set TMPDIR)", err)
		}
		r.WorkDir = d
	}
	return r.WorkDir, os.MkdirAll(r.WorkDir, 0o700)
}

// RunScenario runs one scenario on the workbench, which must be up. It
// never panics: a panicking step fails the scenario.
func (r *Runner) RunScenario(ctx context.Context, s Scenario) Result {
	obs := r.observer()
	start := time.Now()
	res := Result{Name: s.Name, Labels: s.Labels}
	finish := func() Result {
		res.Duration = time.Since(start)
		obs.ScenarioDone(res)
		return res
	}
	fail := func(reason string) Result {
		obs.ScenarioStarted(s.Name, nil)
		res.Status, res.Reason = Failed, reason
		return finish()
	}
	st, err := loadFleet(r.Workbench)
	if err != nil {
		return fail(err.Error())
	}
	if st == nil {
		return fail(fmt.Sprintf("the GitOps system is not up in %s (no fleet/fleet.json): run `tether up`", r.Workbench.StateDir))
	}
	if reason := SkipReason(s, st.Provider); reason != "" {
		obs.ScenarioStarted(s.Name, nil)
		res.Status, res.Reason = Skipped, reason
		return finish()
	}
	if len(st.Spokes) < 2 {
		return fail(fmt.Sprintf("scenarios need a hub and two spokes; the workbench has %d spokes (tether up --spokes 2)", len(st.Spokes)))
	}
	root, err := r.WorkDirPath()
	if err != nil {
		return fail(err.Error())
	}
	dir, err := os.MkdirTemp(root, s.Name+"-")
	if err != nil {
		return fail(fmt.Sprintf("make the scenario folder in %s: %v", root, err))
	}
	e := &Env{name: s.Name, wb: r.Workbench, upArgs: r.UpArgs, fleet: st, dir: dir, obs: obs}
	steps := s.Steps(e)
	names := make([]string, len(steps))
	for i, st := range steps {
		names[i] = st.Name
	}
	obs.ScenarioStarted(s.Name, names)

	timeout := s.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	res.Status = Passed
	for i, step := range steps {
		obs.StepStarted(s.Name, step.Name)
		t0 := time.Now()
		err := runStep(sctx, step)
		if err != nil && sctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (the scenario's %s timeout ran out)", err, timeout)
		}
		took := time.Since(t0)
		obs.StepDone(s.Name, step.Name, took, err)
		sr := StepResult{Name: step.Name, Status: Passed, Duration: took}
		if err != nil {
			sr.Status, sr.Err = Failed, err.Error()
			res.Status, res.FailedStep = Failed, step.Name
			res.Reason = fmt.Sprintf("step %q: %v", step.Name, err)
		}
		res.Steps = append(res.Steps, sr)
		if err != nil {
			for _, rest := range steps[i+1:] {
				res.Steps = append(res.Steps, StepResult{Name: rest.Name, Status: Skipped})
			}
			break
		}
	}
	cancel()

	if r.Keep && res.Status == Failed {
		for i := len(e.cleanups) - 1; i >= 0; i-- {
			obs.Log(s.Name, "--keep: not cleaning up: "+e.cleanups[i].name)
		}
	} else {
		res.CleanupErrors = e.runCleanups(ctx)
	}
	res.Logs = append(e.logs, filepath.Join(r.Workbench.StateDir, "fleet", "logs"))
	return finish()
}

// runStep runs one step, turning a panic into an error that says where.
func runStep(ctx context.Context, s Step) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return s.Run(ctx)
}

// SkipReason says why s cannot run on a workbench of provider (its
// embedded-only or kind-only label), or "" when it can. The runner skips
// such a scenario with this reason; `tether scenario run` without names
// leaves it out up front.
func SkipReason(s Scenario, provider string) string {
	switch {
	case s.HasLabel(LabelEmbeddedOnly) && provider != cluster.ProviderEmbedded:
		return fmt.Sprintf("needs the embedded provider (components as local processes); this workbench runs %s", provider)
	case s.HasLabel(LabelKindOnly) && provider != cluster.ProviderKind:
		return fmt.Sprintf("needs the kind provider; this workbench runs %s", provider)
	}
	return ""
}

// workbenchScenario is the name the runner reports its own up and down
// steps under.
const workbenchScenario = "workbench"

func (r *Runner) observer() Observer {
	if r.Observer == nil {
		return Discard()
	}
	return r.Observer
}

func (r *Runner) driver(scenario string) *harness.Driver {
	return driverFor(r.Workbench, &lineLog{obs: r.observer(), scenario: scenario})
}

func driverFor(w WorkbenchPaths, log *lineLog) *harness.Driver {
	hw := &harness.Driver{Bin: w.Bin, StateDir: w.StateDir, CacheDir: w.CacheDir, Kubeconfig: w.Kubeconfig}
	if log != nil {
		// Not a typed nil in the interface: harness checks Log == nil.
		hw.Log = log
	}
	return hw
}

func loadFleet(w WorkbenchPaths) (*fleet.State, error) {
	cw, err := cluster.New(cluster.Options{StateDir: w.StateDir, CacheDir: w.CacheDir, Kubeconfig: w.Kubeconfig})
	if err != nil {
		return nil, err
	}
	return fleet.Load(cw)
}

// lineLog turns command output into one Observer.Log call per line. A
// command's stdout and stderr both write to it, from two goroutines: the
// lock keeps the buffer whole and the Observer called one at a time.
type lineLog struct {
	obs      Observer
	scenario string
	mu       sync.Mutex
	buf      bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			// An incomplete line waits for the rest.
			l.buf.Reset()
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.obs.Log(l.scenario, strings.TrimRight(line, "\r\n"))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Discard is an Observer that ignores everything.
func Discard() Observer { return discard{} }

type discard struct{}

func (discard) ScenarioStarted(string, []string)              {}
func (discard) StepStarted(string, string)                    {}
func (discard) StepDone(string, string, time.Duration, error) {}
func (discard) Log(string, string)                            {}
func (discard) ScenarioDone(Result)                           {}
