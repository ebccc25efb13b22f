package scenarios

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tether-dev/tether/scenarios/harness"
)

// The docs test's own machinery, on a page written for it and a fake
// tether: no cluster, seconds.
var _ = Describe("docs test walker", Label("docs", "fast"), func() {
	var (
		root, dir string
		tasks     map[string]taskPlan
	)
	// fakeTether echoes its arguments; `serve` runs until Ctrl-C, as a
	// terminal's command does, and says goodbye.
	const fakeTether = `#!/usr/bin/env bash
if [ "$1" = serve ]; then
  trap 'echo bye; exit 0' INT
  echo ready
  while :; do sleep 0.1; done
fi
if [ "$1" = url ]; then echo "$DOCS_TEST_URL"; exit 0; fi
echo "tether $*"
`
	// write puts a page into root and reads it.
	write := func(name, page string) (*markdownDoc, error) {
		Expect(os.WriteFile(filepath.Join(root, name), []byte(page), 0o644)).To(Succeed())
		return readMarkdownDoc(root, name)
	}
	shell := func(standIn ...string) *docsShell {
		GinkgoHelper()
		bin := filepath.Join(dir, "fake-tether")
		Expect(os.WriteFile(bin, []byte(fakeTether), 0o755)).To(Succeed())
		sh, err := newDocsShell(root, filepath.Join(dir, "walk"), filepath.Join(dir, "home"), filepath.Join(dir, "cache"), bin, tasks, GinkgoWriter, standIn...)
		Expect(err).NotTo(HaveOccurred())
		return sh
	}

	BeforeEach(func() {
		mod, err := harness.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		tasks, err = readTaskfile(mod)
		Expect(err).NotTo(HaveOccurred())
		dir = GinkgoT().TempDir()
		root = filepath.Join(dir, "root")
		Expect(os.MkdirAll(root, 0o755)).To(Succeed())
	})

	It("runs blocks through the stand-ins, re-runs a block until its expect holds, and drives terminals with Ctrl-C", func(ctx SpecContext) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s\n", r.Header.Get("X-Dev"))
		}))
		DeferCleanup(srv.Close)
		doc, err := write("page.md", "# A page\n\n"+
			"<!-- docs-test: skip: it would fail -->\n```sh\nfalse\n```\n\n"+
			"```sh\ngo run ./cmd/tether status --flag   # a comment\ngo tool task down\ngo tool task up -- --spokes 3\nkubectl get pods\n"+
			"curl -H 'X-Dev: alice' \"$(tether url)\"\n```\n"+
			"<!-- docs-test: expect \"tether status --flag\" \"tether up --spokes 3\" \"hello alice\" -->\n\n"+
			"Terminal A:\n\n<!-- docs-test: terminal A -->\n```sh\ngo run ./cmd/tether serve\n```\n<!-- docs-test: expect \"ready\" -->\n\n"+
			"```\noutput, not run\n```\n\n"+
			"```sh\nf=$TMPDIR/count; echo x >>\"$f\"; echo \"runs: $(wc -l <\"$f\")\"\n```\n<!-- docs-test: expect \"runs: 3\" -->\n\n"+
			"<!-- docs-test: ctrl-c A -->\n<!-- docs-test: expect A \"bye\" -->\n")
		Expect(err).NotTo(HaveOccurred())
		sh := shell("kubectl", "curl")
		sh.env = append(sh.env, "DOCS_TEST_URL="+srv.URL)
		w := newDocsWalk(sh, doc)
		DeferCleanup(w.cleanup)
		Expect(w.run(ctx)).To(Succeed())
		Expect(w.ran).To(HaveLen(3))
		Expect(w.skipped).To(ConsistOf(ContainSubstring("page.md:4: false (it would fail)")))
		Expect(sh.notRun()).To(ConsistOf(
			HavePrefix("docs-test: not run: go tool task down: it would take down the workbench"),
			"docs-test: not run (kubectl is not installed here): kubectl get pods"))
	}, SpecTimeout(2*time.Minute))

	It("names the page, the line, the command and its output when a block fails", func(ctx SpecContext) {
		doc, err := write("fails.md", "# Fails\n\n```sh\necho one\nfalse\necho two\n```\n\n```sh\necho never\n```\n")
		Expect(err).NotTo(HaveOccurred())
		w := newDocsWalk(shell(), doc)
		err = w.run(ctx)
		Expect(err).To(MatchError(And(
			ContainSubstring("fails.md:3: the block failed (exit status 1)"),
			ContainSubstring("docs-test: fails.md:5: exit status 1: false"),
			ContainSubstring("output:\n    one\n    docs-test:"))))
		Expect(w.ran).To(HaveLen(1))
	}, SpecTimeout(time.Minute))

	It("fails a go tool task that Taskfile.yml does not define, and a go command it has no stand-in for", func(ctx SpecContext) {
		doc, err := write("tasks.md", "```sh\ngo tool task no-such-task\n```\n")
		Expect(err).NotTo(HaveOccurred())
		sh := shell()
		Expect(newDocsWalk(sh, doc).run(ctx)).To(MatchError(ContainSubstring(`Taskfile.yml defines no task "no-such-task"`)))
		doc, err = write("goinstall.md", "```sh\ngo install example.com/tool@latest\n```\n")
		Expect(err).NotTo(HaveOccurred())
		Expect(newDocsWalk(sh, doc).run(ctx)).To(MatchError(ContainSubstring("no stand-in for `go install example.com/tool@latest`")))
	}, SpecTimeout(time.Minute))

	It("fails when a terminal is left running at the end of its page", func(ctx SpecContext) {
		doc, err := write("left.md", "<!-- docs-test: terminal B -->\n```sh\ngo run ./cmd/tether serve\n```\n<!-- docs-test: expect \"ready\" -->\n")
		Expect(err).NotTo(HaveOccurred())
		w := newDocsWalk(shell(), doc)
		DeferCleanup(w.cleanup)
		Expect(w.run(ctx)).To(MatchError(ContainSubstring("terminal B (left.md:2) still run at the end of left.md")))
	}, SpecTimeout(time.Minute))

	It("refuses misplaced, unknown and incomplete annotations", func() {
		for page, want := range map[string]string{
			"<!-- docs-test: skip -->\n```sh\ntrue\n```\n":                                   `unknown annotation "skip"`,
			"<!-- docs-test: skip: why -->\ntext\n\n```sh\ntrue\n```\n":                      "annotation not followed by a block",
			"<!-- docs-test: terminal B -->\n```sh\nsleep 1\n```\n":                          "terminal B block without an expect",
			"<!-- docs-test: ctrl-c B -->\n":                                                 "no terminal B is started above",
			"```sh\ntrue\n```\n\nsome text\n\n<!-- docs-test: expect \"x\" -->\n":            "an unnamed expect must follow its block",
			"<!-- docs-test: skip: why -->\n```\noutput\n```\n":                              "which is not run anyway",
			"```sh\ntrue\n```\n<!-- docs-test: expect x -->\n":                               "give each text as a quoted string",
			"<!-- docs-test: terminal B -->\n<!-- docs-test: skip: why -->\n```sh\nx\n```\n": "more than one annotation",
		} {
			_, err := write("bad.md", page)
			Expect(err).To(MatchError(ContainSubstring(want)), page)
		}
	})

	It("the curl stand-in GETs with headers and fails like curl -f", func() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/missing" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, "dev=%s\n", r.Header.Get("X-Dev"))
		}))
		defer srv.Close()
		var out, errw strings.Builder
		Expect(curlStandIn([]string{"-s", "-H", "X-Dev: alice", srv.URL}, &out, &errw)).To(Equal(0))
		Expect(out.String()).To(Equal("dev=alice\n"))
		Expect(curlStandIn([]string{"-f", srv.URL + "/missing"}, &out, &errw)).To(Equal(22))
		Expect(curlStandIn([]string{"--data", "x", srv.URL}, &out, &errw)).To(Equal(2))
		Expect(errw.String()).To(ContainSubstring("option --data is not supported"))
	})
})
