package scenarios

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/scenarios/harness"
)

// The terminal UI scenario: the real program in tmux on the embedded
// provider. A user brings the workbench up with a key, waits for every spoke
// to show Synced on the Applications screen, makes a change and watches its
// commit reach every spoke, opens the Intercepts screen, adds a spoke and
// removes it again from the Clusters screen, opens a log and quits. Every
// assertion is on the screen as tmux shows it.
var _ = Describe("terminal UI", Label("embedded", "tui"), func() {
	It("brings the workbench up, rolls a change out to every spoke and follows a log", func(ctx SpecContext) {
		if scenarioProvider() != cluster.ProviderEmbedded {
			Skip("the terminal UI scenario runs on the embedded provider; TETHER_SCENARIO_PROVIDER=" + scenarioProvider())
		}
		tmuxBin, err := exec.LookPath("tmux")
		if err != nil {
			Skip("the terminal UI scenario drives tether in tmux, and tmux is not on PATH: install it (apt-get install tmux) to run it")
		}
		wb := newWorkbench()
		spokes := []string{"spoke-1", "spoke-2"}
		ui := startUIWith(ctx, tmuxBin, wb, "provider: embedded\nhub:\n  name: hub\nspokes:\n  - name: spoke-1\n  - name: spoke-2\n",
			fmt.Sprintf("tether-tui-%d-%d", os.Getpid(), GinkgoParallelProcess()), 3*time.Minute)
		press, waitScreen := ui.press, ui.waitScreen

		By("starting on the Clusters screen of an empty workbench")
		waitScreen("the UI starts", time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("[1 Clusters]"))
			g.Expect(s).To(ContainSubstring("No workbench in " + wb.StateDir))
			g.Expect(s).To(ContainSubstring("u bring up"))
		})

		By("bringing the workbench and the GitOps system up with u")
		press("u")
		ui.waitDone("the workbench comes up", "Bringing the workbench up", 5*time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("start the principal on the hub"))
			for _, c := range append([]string{"hub"}, spokes...) {
				g.Expect(s).To(MatchRegexp(clusterReady(c, "embedded")))
			}
		})

		By("seeing every spoke connected on the Agents screen")
		press("2")
		waitScreen("every agent is connected", time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("[2 Agents]"))
			for _, sp := range spokes {
				g.Expect(s).To(MatchRegexp(`%s\s+✓ connected\s+\S+ ago\s+\S+\s+\d+`, regexp.QuoteMeta(sp)))
			}
		})

		By("seeing every spoke Synced and Healthy on the Applications screen")
		press("3")
		hubRow := func(spoke, rev string) string {
			return fmt.Sprintf(`(?m)^[> ] hub\s+%s\s+sample\s+Synced\s+Healthy\s+%s\s`, regexp.QuoteMeta(spoke), rev)
		}
		s := waitScreen("every spoke is Synced and Healthy", 5*time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("[3 Applications]"))
			for _, sp := range spokes {
				g.Expect(s).To(MatchRegexp(hubRow(sp, `[0-9a-f]{8}`)))
			}
		})
		first := regexp.MustCompile(hubRow(spokes[0], `([0-9a-f]{8})`)).FindStringSubmatch(s)[1]

		By("making a change and watching its commit reach every spoke")
		press("c")
		var sha string
		waitScreen("the change is committed", time.Minute, func(g Gomega, s string) {
			g.Expect(s).NotTo(ContainSubstring("make a change (scale the sample to 2) failed"))
			m := regexp.MustCompile(`committed ([0-9a-f]{8}): scale the sample to 2 replicas`).FindStringSubmatch(s)
			g.Expect(m).NotTo(BeNil(), "no commit in the status line")
			sha = m[1]
		})
		// The seed commit is what every spoke ran so far; a new one is
		// what makes the wait below a rollout.
		Expect(sha).NotTo(Equal(first), "the change did not make a new commit")
		waitScreen("the new revision is Synced on every spoke", 5*time.Minute, func(g Gomega, s string) {
			for _, sp := range spokes {
				g.Expect(s).To(MatchRegexp(hubRow(sp, sha)))
			}
		})

		By("seeing the Intercepts screen render")
		press("5")
		waitScreen("the Intercepts screen lists none", 30*time.Second, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("[5 Intercepts]"))
			g.Expect(s).To(ContainSubstring("No intercepts. Press n to start one."))
			g.Expect(s).To(ContainSubstring("n new intercept"))
		})

		By("intercepting the sample's Service from the form: the screen says where to reach it, which answers from this machine")
		interceptSampleFromTheUI(ctx, wb, press, waitScreen, hubRow(spokes[0], sha))

		By("adding spoke-3 with a and removing it again with x on the Clusters screen")
		press("1")
		press("a")
		waitScreen("the add prompt offers spoke-3", 30*time.Second, func(g Gomega, s string) {
			g.Expect(s).To(MatchRegexp(`New spoke\s+spoke-3`))
		})
		press("Enter")
		ui.waitDone("spoke-3 is added and synced", "Adding spoke spoke-3", 5*time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("start the agent of spoke-3"))
			g.Expect(s).To(MatchRegexp(`(?m)^spoke-3\s+spoke\s+embedded\s+https://\S+\s+\S+\s+✓ ready`))
		})
		press("x")
		waitScreen("the remove prompt offers spoke-3", 30*time.Second, func(g Gomega, s string) {
			g.Expect(s).To(MatchRegexp(`Spoke to remove\s+spoke-3`))
		})
		press("Enter")
		ui.waitDone("spoke-3 is removed", "Removing spoke spoke-3", 5*time.Minute, func(g Gomega, s string) {
			g.Expect(s).NotTo(MatchRegexp(`(?m)^spoke-3\s+spoke`))
		})

		By("opening the principal's log on the Logs screen")
		press("4")
		s = waitScreen("the Logs screen lists the GitOps components", time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("[4 Logs]"))
			g.Expect(s).To(ContainSubstring("Pick a log to follow"))
			for _, c := range append([]string{"git", "principal"}, "agent-spoke-1", "agent-spoke-2") {
				g.Expect(s).To(MatchRegexp(`gitops/%s\s+\S+%s\.log`, regexp.QuoteMeta(c), regexp.QuoteMeta(c)))
			}
			g.Expect(s).To(ContainSubstring("hub/kube-apiserver"))
		})
		// The list starts with the cursor on its first entry; move it down
		// to the principal.
		var entries []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "> ") || (strings.HasPrefix(l, "  ") && strings.Contains(l, ".log")) {
				entries = append(entries, l)
			}
		}
		idx := -1
		for i, l := range entries {
			if strings.Contains(l, "gitops/principal") {
				idx = i
			}
		}
		Expect(idx).To(BeNumerically(">=", 0), "the principal is not in the list:\n%s", s)
		// One key at a time: keys that reach the terminal together arrive
		// as one message ("jj"), which no binding matches.
		for range idx {
			press("j")
			time.Sleep(150 * time.Millisecond)
		}
		waitScreen("the cursor is on the principal", 30*time.Second, func(g Gomega, s string) {
			g.Expect(s).To(MatchRegexp(`(?m)^> gitops/principal\s`))
		})
		press("Enter")
		waitScreen("the principal's log is followed", 30*time.Second, func(g Gomega, s string) {
			m := regexp.MustCompile(`gitops/principal\s+(\d+) lines · \S+principal\.log`).FindStringSubmatch(s)
			g.Expect(m).NotTo(BeNil(), "no log header")
			n, _ := strconv.Atoi(m[1])
			g.Expect(n).To(BeNumerically(">", 0), "the log is empty")
			g.Expect(s).To(ContainSubstring("esc back"))
		})

		By("quitting with q")
		press("q")
		waitScreen("tether exits", 30*time.Second, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("tether exited with status 0"))
		})
	}, SpecTimeout(20*time.Minute))
})

// interceptSampleFromTheUI is the newcomer's first intercept, done in the
// UI on the Intercepts screen: spoke-1's sample Service, port 80, to a
// server on this machine. The address the screen shows for reaching the
// Service answers from that server while the sample's Application stays
// Synced (synced is its row on the Applications screen); stopping it with
// x gives the sample its Service back. It returns on the Intercepts screen.
func interceptSampleFromTheUI(ctx SpecContext, wb *harness.Driver, press func(...string), waitScreen func(string, time.Duration, func(Gomega, string)) string, synced string) {
	GinkgoHelper()
	began := time.Now()
	const spoke, local = "spoke-1", "hello from the newcomer's machine"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, local) }))
	DeferCleanup(srv.Close)
	to := strings.TrimPrefix(srv.URL, "http://")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	get := func(url string) (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), err
	}
	res := wb.Run(ctx, "sample", "url", spoke)
	Expect(res.ExitCode).To(Equal(0), "tether sample url %s: %s", spoke, res.Stderr)
	sampleURL := strings.TrimSpace(res.Stdout)
	answersSpoke := func(g Gomega) {
		got, err := get(sampleURL)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal("hello from tether's sample on cluster "+spoke), "GET %s", sampleURL)
	}
	Eventually(answersSpoke).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())

	// Typing goes to the form; the fields are Cluster, Namespace, Service,
	// Port, To. Keys go one at a time (see the Logs step above).
	press("n")
	waitScreen("the start form opens", 30*time.Second, func(g Gomega, s string) {
		g.Expect(s).To(ContainSubstring("Start an intercept"))
	})
	for _, k := range []string{"C-u", spoke, "Tab", "C-u", "sample", "Tab", "web", "Tab", "80", "Tab", to, "Enter"} {
		press(k)
		time.Sleep(150 * time.Millisecond)
	}
	row := regexp.MustCompile(`(?m)^> (\S+)\s+` + regexp.QuoteMeta(spoke+"/sample/web") + `\s+80\s+global\s+` + regexp.QuoteMeta(to) + `\s+(http://127\.0\.0\.1:\d+/)\s+.*✓ held`)
	var name, reach string
	waitScreen("the intercept starts and shows where to reach it", 2*time.Minute, func(g Gomega, s string) {
		if strings.Contains(s, "start failed") {
			StopTrying("the intercept did not start").Attach("screen", s).Now()
		}
		m := row.FindStringSubmatch(s)
		g.Expect(m).NotTo(BeNil(), "no held row of spoke-1/sample/web with an address")
		name, reach = m[1], m[2]
		g.Expect(s).To(ContainSubstring(fmt.Sprintf("intercept %s started on %s/sample/web: reach it at %s from this machine", name, spoke, reach)))
	})
	// On embedded that is the spoke's service proxy: the sample's own
	// address, which now reaches this machine.
	Expect(reach).To(Equal(sampleURL), "the UI's address for the Service is not the one tether sample url prints")
	Eventually(func(g Gomega) {
		got, err := get(reach)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(local), "GET %s", reach)
	}).WithContext(ctx).WithTimeout(20 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	GinkgoWriter.Printf("GET %s (shown by the UI) answered from this machine %s after the form\n", reach, time.Since(began).Round(time.Millisecond))

	press("3")
	waitScreen("the sample's Application stays Synced during the intercept", time.Minute, func(g Gomega, s string) {
		g.Expect(s).To(ContainSubstring("[3 Applications]"))
		g.Expect(s).To(MatchRegexp(synced))
	})
	got, err := get(reach)
	Expect(err).NotTo(HaveOccurred())
	Expect(got).To(Equal(local), "the intercept did not hold while the Application was Synced")

	press("5")
	waitScreen("the intercept is selected", 30*time.Second, func(g Gomega, s string) {
		g.Expect(s).To(MatchRegexp(row.String()))
	})
	press("x")
	waitScreen("the intercept is stopped", time.Minute, func(g Gomega, s string) {
		if strings.Contains(s, "stop of "+name+" failed") {
			StopTrying("the stop failed").Attach("screen", s).Now()
		}
		g.Expect(s).To(ContainSubstring(fmt.Sprintf("intercept %s stopped; %s/sample/web is as it was", name, spoke)))
		g.Expect(s).To(ContainSubstring("No intercepts. Press n to start one."))
	})
	Eventually(answersSpoke).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	GinkgoWriter.Printf("the UI's intercept of the sample took %s, form to the sample answering again\n", time.Since(began).Round(time.Millisecond))
}
