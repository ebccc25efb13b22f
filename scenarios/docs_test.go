package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/scenarios/harness"
)

// walkedDocs are the pages whose ```sh blocks the docs test runs as
// written (issue 12: docs cannot drift from the commands).
var walkedDocs = []string{"docs/onboarding.md", "docs/intercept.md"}

// The docs test: docs/onboarding.md and docs/intercept.md walked as a
// reader would, block by block, with bash, on an embedded workbench whose
// state folder is ~/.local/state/tether of a HOME of its own, so the pages'
// paths hold as written. Annotations in the pages (HTML comments, see
// docs_markdown_test.go and docs/scenarios.md) mark the blocks that run in
// another terminal, what a block or a terminal must print, where Ctrl-C is
// pressed, and the blocks that are not run, each with its reason.
var _ = Describe("docs", Label("docs"), func() {
	It("reads the annotations of the walked pages, and every `go tool task` they run is a task of Taskfile.yml", Label("fast"), func() {
		root, err := harness.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		tasks, err := readTaskfile(root)
		Expect(err).NotTo(HaveOccurred())
		for _, p := range walkedDocs {
			doc, err := readMarkdownDoc(root, p)
			Expect(err).NotTo(HaveOccurred())
			run, skip := 0, 0
			for _, b := range doc.blocks() {
				switch {
				case !b.runnable():
				case b.skip != "":
					skip++
				default:
					run++
				}
			}
			Expect(run).To(BeNumerically(">", 0), "%s has no sh block to run", p)
			fmt.Fprintf(GinkgoWriter, "%s: %d sh blocks to run, %d skipped\n", p, run, skip)
			for name, line := range goToolTasks(doc) {
				_, ok := tasks[name]
				Expect(ok).To(BeTrue(), "%s:%d runs `go tool task %s`, which Taskfile.yml does not define", p, line, name)
			}
		}
	})

	Describe("walked as written on an embedded workbench", Ordered, ContinueOnFailure, Label("embedded"), func() {
		var (
			root string
			wb   *harness.Driver
			sh   *docsShell
		)
		BeforeAll(func(ctx SpecContext) {
			if scenarioProvider() != cluster.ProviderEmbedded {
				Skip("the docs are walked on the embedded provider (the pages mark what differs on kind); TETHER_SCENARIO_PROVIDER=" + scenarioProvider())
			}
			var err error
			root, err = harness.ModuleRoot()
			Expect(err).NotTo(HaveOccurred())
			tasks, err := readTaskfile(root)
			Expect(err).NotTo(HaveOccurred())
			cache, err := cluster.DefaultCacheDir()
			Expect(err).NotTo(HaveOccurred())
			dir := GinkgoT().TempDir()
			home := filepath.Join(dir, "home")
			// The pages' defaults: ~/.local/state/tether and ~/.kube/config.
			wb = &harness.Driver{
				Bin:        tetherBin,
				StateDir:   filepath.Join(home, ".local", "state", "tether"),
				CacheDir:   cache,
				Kubeconfig: filepath.Join(home, ".kube", "config"),
				Log:        GinkgoWriter,
			}
			Expect(os.MkdirAll(filepath.Dir(wb.Kubeconfig), 0o700)).To(Succeed())
			// The pages' `go tool task up` reattaches to this workbench: on
			// a machine with Docker a first up would pick kind.
			DeferCleanup(func(ctx SpecContext) {
				res := wb.Run(ctx, "down")
				Expect(res.ExitCode).To(Equal(0), "tether down: %s", res.Stderr)
			}, NodeTimeout(3*time.Minute))
			res := wb.Run(ctx, "up", "--provider", "embedded")
			Expect(res.ExitCode).To(Equal(0), "tether up failed:\n%s", res.Stderr)
			sh, err = newDocsShell(root, filepath.Join(dir, "walk"), home, cache, tetherBin, tasks, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(10*time.Minute))

		for _, p := range walkedDocs {
			It("runs every sh block of "+p+" in order, as written, except those marked skip", func(ctx SpecContext) {
				doc, err := readMarkdownDoc(root, p)
				Expect(err).NotTo(HaveOccurred())
				Expect(os.WriteFile(sh.notes, nil, 0o644)).To(Succeed())
				w := newDocsWalk(sh, doc)
				DeferCleanup(w.cleanup)
				start := time.Now()
				err = w.run(ctx)
				summary := walkSummary(w, sh.notRun(), time.Since(start))
				fmt.Fprintf(GinkgoWriter, "\n%s", summary)
				AddReportEntry("docs walk of "+p, summary)
				Expect(err).NotTo(HaveOccurred())

				By("leaving no intercept behind in any cluster")
				w.cleanup()
				for _, c := range []string{"hub", "spoke-1", "spoke-2"} {
					cs, err := wb.Client(c)
					Expect(err).NotTo(HaveOccurred())
					Eventually(func(g Gomega) {
						expectNoTrafficAgent(g, context.Background(), cs, "")
					}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "cluster %s after %s", c, p)
				}
			}, SpecTimeout(20*time.Minute))
		}
	})
})

// walkSummary says what a walk ran, what it skipped and why, and what the
// stand-ins did not run.
func walkSummary(w *docsWalk, notRun []string, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s walked in %s: %d blocks run, %d skipped\n", w.doc.path, took.Round(time.Second), len(w.ran), len(w.skipped))
	for _, r := range w.ran {
		fmt.Fprintf(&b, "  ran      %s\n", r)
	}
	for _, s := range w.skipped {
		fmt.Fprintf(&b, "  skipped  %s\n", s)
	}
	sort.Strings(notRun)
	for _, n := range notRun {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	return b.String()
}
