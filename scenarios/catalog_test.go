package scenarios

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/tether-dev/tether/scenarios/catalog"
)

// The named scenarios (scenarios/catalog), one It each, sharing one
// workbench (hub + 2 spokes with the GitOps system) so CI pays for one up.
// The same definitions run from `tether scenario run` and the TUI. Each
// scenario cleans up after itself, so a failure does not stop the rest
// (ContinueOnFailure).
var _ = Describe("catalog", Ordered, ContinueOnFailure, Label("embedded", "catalog"), func() {
	var runner *catalog.Runner

	BeforeAll(func(ctx SpecContext) {
		wb := newWorkbench()
		runner = &catalog.Runner{
			Workbench: catalog.WorkbenchPaths{Bin: wb.Bin, StateDir: wb.StateDir, CacheDir: wb.CacheDir, Kubeconfig: wb.Kubeconfig},
			Provider:  scenarioProvider(),
			WorkDir:   GinkgoT().TempDir(),
			Observer:  ginkgoObserver{},
		}
		DeferCleanup(func(ctx SpecContext) error { return runner.Down(ctx) }, NodeTimeout(3*time.Minute))
		if err := runner.Up(ctx); err != nil {
			Fail(err.Error())
		}
	}, NodeTimeout(10*time.Minute))

	for _, s := range catalog.All() {
		It(s.Name+": "+s.Description, Label(s.Labels...), func(ctx SpecContext) {
			res := runner.RunScenario(ctx, s)
			switch res.Status {
			case catalog.Skipped:
				Skip(res.Reason)
			case catalog.Failed:
				msg := res.Reason
				if len(res.Logs) > 0 {
					msg += "\nwhere to look: " + strings.Join(res.Logs, ", ")
				}
				Fail(msg)
			}
			if len(res.CleanupErrors) > 0 {
				Fail("cleanup failed, later scenarios may see leftovers: " + strings.Join(res.CleanupErrors, "; "))
			}
		}, SpecTimeout(s.Timeout+5*time.Minute)) // cleanups may run `tether up`
	}
})

// ginkgoObserver writes a scenario's steps to GinkgoWriter: shown when a
// spec fails, or always with -ginkgo.v.
type ginkgoObserver struct{}

func (ginkgoObserver) ScenarioStarted(name string, steps []string) {
	fmt.Fprintf(GinkgoWriter, "== %s: %s\n", name, strings.Join(steps, " → "))
}
func (ginkgoObserver) StepStarted(name, step string) {
	fmt.Fprintf(GinkgoWriter, "[%s] %s\n", name, step)
}
func (ginkgoObserver) StepDone(name, step string, took time.Duration, err error) {
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "[%s]   FAILED after %s: %v\n", name, took.Round(time.Millisecond), err)
		return
	}
	fmt.Fprintf(GinkgoWriter, "[%s]   ok (%s)\n", name, took.Round(time.Millisecond))
}
func (ginkgoObserver) Log(name, msg string) { fmt.Fprintf(GinkgoWriter, "[%s]   | %s\n", name, msg) }
func (ginkgoObserver) ScenarioDone(r catalog.Result) {
	fmt.Fprintf(GinkgoWriter, "%s %s (%s) %s\n", strings.ToUpper(string(r.Status)), r.Name, r.Duration.Round(time.Millisecond), r.Reason)
}
