package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/scenarios/catalog"
)

func newScenario(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scenario",
		Short: "List and run the named scenarios (the same ones CI runs)",
		Long: `Named scenarios drive a workbench the way you would — commits, kills, cuts,
intercepts — and check what the system does, step by step. They are the same
definitions the Ginkgo suite (scenarios/catalog_test.go) and the TUI run.
See docs/scenarios.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newScenarioList(g), newScenarioRun(g))
	return cmd
}

func newScenarioList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Show every scenario with its labels and what it proves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listScenarios(g.out, catalog.All())
		},
	}
}

func listScenarios(w io.Writer, all []catalog.Scenario) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLABELS\tDESCRIPTION")
	for _, s := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, strings.Join(s.Labels, ","), s.Description)
	}
	return tw.Flush()
}

// scenarioRunFlags are `scenario run`'s options.
type scenarioRunFlags struct {
	label    string
	provider string
	keep     bool
	report   string
	workDir  string
	upArgs   []string
}

func newScenarioRun(g *globals) *cobra.Command {
	var f scenarioRunFlags
	cmd := &cobra.Command{
		Use:   "run [NAME...] [--label EXPR]",
		Short: "Run scenarios on a workbench, step by step, with a verdict",
		Long: `Run the named scenarios in order (or every scenario --label selects) on the
workbench in --state-dir (default ~/.local/state/tether). With neither, run
every scenario the workbench's provider supports: --provider, else the one the
workbench runs on, else the one tether.yaml names, else what ` + "`tether up`" + ` picks
(kind when a Docker engine answers, else embedded). The scenarios labelled for
another provider (embedded-only, kind-only) are left out and listed.

If a workbench with the GitOps system already runs there, it is reused
(` + "`tether up`" + ` reattaches and restarts what died) and left running afterwards.
Otherwise one is brought up (hub + 2 spokes) and taken down at the end unless
--keep. Each scenario cleans up what it made; with --keep a failing scenario's
leftovers stay for inspection and the run stops there.

Exit status is non-zero when any scenario failed.`,
		Example: `  tether scenario run
  tether scenario run fleet-rollout
  tether scenario run --label 'fast && !intercept'
  tether scenario run prune bad-manifest --provider embedded --report junit.xml`,
		RunE: func(cmd *cobra.Command, names []string) error {
			return runScenarios(cmd.Context(), g, names, f)
		},
	}
	// pflag shows the first `quoted` word of a usage as the flag's value
	// placeholder: only the placeholder is quoted so.
	cmd.Flags().StringVar(&f.label, "label", "", "select scenarios by label `expression`, e.g. 'fast && !chaos' (see 'tether scenario list')")
	cmd.Flags().StringVar(&f.provider, "provider", "", "provider for a new workbench: embedded, kind or existing (default: the running one, else up's default); with no names and no --label, every scenario for it runs")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "leave the workbench up, and a failing scenario's leftovers in place (the run stops at it)")
	cmd.Flags().StringVar(&f.report, "report", "", "write a JUnit XML report to this file")
	cmd.Flags().StringVar(&f.workDir, "work-dir", "", "folder for the scenarios' files and logs (default: a new temporary folder, kept)")
	cmd.Flags().StringArrayVar(&f.upArgs, "up-arg", nil, "extra `argument` for 'tether up' (repeatable), e.g. --up-arg=--context --up-arg=hub=my-hub")
	return cmd
}

// runOptions are the run the arguments ask for, reported as lines on
// stdout.
func runOptions(g *globals, names []string, f scenarioRunFlags) catalog.RunOptions {
	return catalog.RunOptions{
		Names: names, Label: f.label, Provider: f.provider, Keep: f.keep, WorkDir: f.workDir, UpArgs: f.upArgs,
		StateDir: g.stateDir, CacheDir: g.cacheDir, Kubeconfig: g.kubeconfig,
		Observer: newLineObserver(g.out, g.verbosity > 0),
	}
}

func runScenarios(ctx context.Context, g *globals, names []string, f scenarioRunFlags) error {
	opts := runOptions(g, names, f)
	r, picked, leftOut, err := catalog.NewRunner(ctx, opts)
	if err != nil {
		return err
	}
	dir, err := r.WorkDirPath()
	if err != nil {
		return err
	}
	announceRun(g.out, r, picked, leftOut, opts.RunsAll(), dir)
	results, runErr := r.Run(ctx, picked)
	if f.report != "" {
		if err := writeReport(f.report, results); err != nil {
			return err
		}
		fmt.Fprintf(g.out, "JUnit report: %s\n", f.report)
	}
	if runErr != nil {
		return runErr
	}
	return verdict(g.out, results)
}

// announceRun says what a run is about to do. A run of every scenario
// names its provider and, in one line, the scenarios left out for it.
func announceRun(w io.Writer, r *catalog.Runner, picked []catalog.Scenario, leftOut []string, all bool, dir string) {
	what := plural(len(picked), "scenario")
	if all {
		what += fmt.Sprintf(" (every one for the %s provider)", r.Provider)
		if len(leftOut) > 0 {
			fmt.Fprintf(w, "not for %s: %s\n", r.Provider, strings.Join(leftOut, ", "))
		}
	}
	fmt.Fprintf(w, "running %s on the workbench in %s; scenario files and logs in %s\n", what, r.Workbench.StateDir, dir)
}

func writeReport(path string, results []catalog.Result) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write the JUnit report: %w", err)
	}
	if err := catalog.WriteJUnit(out, results); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// verdict prints the summary table and fails when any scenario failed.
func verdict(w io.Writer, results []catalog.Result) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var failed []string
	count := map[catalog.Status]int{}
	for _, r := range results {
		count[r.Status]++
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(r.Status)), r.Name, r.Duration.Round(100*time.Millisecond))
		if r.Status == catalog.Failed {
			failed = append(failed, r.Name)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", count[catalog.Passed], count[catalog.Failed], count[catalog.Skipped])
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d scenarios failed: %s (the reasons and where to look are above)", len(failed), len(results), strings.Join(failed, ", "))
	}
	return nil
}

// lineObserver prints a run as plain lines: they read the same on a
// terminal, in a pipe and in CI logs.
type lineObserver struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	total   map[string]int
	index   map[string]int
}

func newLineObserver(w io.Writer, verbose bool) *lineObserver {
	return &lineObserver{w: w, verbose: verbose, total: map[string]int{}, index: map[string]int{}}
}

func (o *lineObserver) ScenarioStarted(name string, steps []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.total[name] = len(steps)
	o.index[name] = 0
	if len(steps) > 0 {
		fmt.Fprintf(o.w, "== %s (%d steps)\n", name, len(steps))
	}
}

func (o *lineObserver) StepStarted(name, step string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if strings.HasPrefix(step, "clean up: ") {
		fmt.Fprintf(o.w, "[%s] %s\n", name, step)
		return
	}
	o.index[name]++
	if n := o.total[name]; n > 0 {
		fmt.Fprintf(o.w, "[%s] step %d/%d: %s\n", name, o.index[name], n, step)
		return
	}
	fmt.Fprintf(o.w, "[%s] %s\n", name, step)
}

func (o *lineObserver) StepDone(name, step string, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		fmt.Fprintf(o.w, "[%s]   FAILED after %s: %v\n", name, took.Round(100*time.Millisecond), err)
		return
	}
	fmt.Fprintf(o.w, "[%s]   ok (%s)\n", name, took.Round(100*time.Millisecond))
}

func (o *lineObserver) Log(name, msg string) {
	if !o.verbose {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "[%s]   | %s\n", name, msg)
}

func (o *lineObserver) ScenarioDone(r catalog.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch r.Status {
	case catalog.Passed:
		fmt.Fprintf(o.w, "PASS %s (%s)\n", r.Name, r.Duration.Round(100*time.Millisecond))
	case catalog.Skipped:
		fmt.Fprintf(o.w, "SKIP %s: %s\n", r.Name, r.Reason)
	default:
		fmt.Fprintf(o.w, "FAIL %s (%s): %s\n", r.Name, r.Duration.Round(100*time.Millisecond), r.Reason)
		if len(r.Logs) > 0 {
			fmt.Fprintf(o.w, "     where to look: %s\n", strings.Join(r.Logs, ", "))
		}
	}
	for _, c := range r.CleanupErrors {
		fmt.Fprintf(o.w, "     cleanup failed (something may be left behind): %s\n", c)
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
