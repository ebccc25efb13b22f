package scenarios

import (
	"fmt"
	"os"
	"os/exec"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tether-dev/tether/cluster"
)

// The terminal UI on kind: the Clusters screen's `u` makes kind clusters
// (hub and one spoke, from the node image the kind suite prepared) and the
// whole GitOps system, the Applications screen shows the spoke's sample
// Synced and Healthy, and `d d` takes it all down. The embedded UI scenario
// (tui_test.go) covers the other screens; this one proves the headline on
// real kind clusters.
var _ = Describe("terminal UI on kind", Label("kind-only", "tui"), func() {
	It("brings kind clusters and the GitOps system up with u and down with d", func(ctx SpecContext) {
		if err := cluster.DockerEngineAnswers(ctx); err != nil {
			if os.Getenv("TETHER_REQUIRE_KIND") != "" {
				Fail("TETHER_REQUIRE_KIND is set (CI) but no Docker engine answers: " + err.Error())
			}
			Skip("the kind UI scenario needs a Docker engine: " + err.Error())
		}
		tmuxBin, err := exec.LookPath("tmux")
		if err != nil {
			if os.Getenv("TETHER_REQUIRE_KIND") != "" {
				Fail("TETHER_REQUIRE_KIND is set (CI) but tmux is not on PATH")
			}
			Skip("the terminal UI scenario drives tether in tmux, and tmux is not on PATH: install it (apt-get install tmux)")
		}
		wb := newWorkbench()
		// The node image first (present after the kind suite; built, once,
		// on a fresh machine), so the UI's wait is for clusters only.
		res := wb.Run(ctx, "prepare", "--provider", "kind")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		ui := startUIWith(ctx, tmuxBin, wb, "provider: kind\nhub:\n  name: hub\nspokes:\n  - name: spoke-1\n",
			fmt.Sprintf("tether-tui-kind-%d", os.Getpid()), 5*time.Minute)
		press, waitScreen := ui.press, ui.waitScreen

		waitScreen("the UI starts", time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("[1 Clusters]"))
			g.Expect(s).To(ContainSubstring("u bring up"))
		})

		By("u: kind clusters and the GitOps system come up, with live steps")
		press("u")
		ui.waitDone("the kind workbench comes up", "Bringing the workbench up", 15*time.Minute, func(g Gomega, s string) {
			for _, c := range []string{"hub", "spoke-1"} {
				g.Expect(s).To(MatchRegexp(clusterReady(c, "kind")))
			}
		})

		By("the Applications screen: the spoke's sample Synced and Healthy")
		press("3")
		waitScreen("spoke-1's sample is Synced and Healthy", 5*time.Minute, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("[3 Applications]"))
			g.Expect(s).To(MatchRegexp(`spoke-1\s+sample\s+Synced\s+Healthy`))
		})

		By("d, d: down from the Clusters screen")
		press("1")
		press("d")
		time.Sleep(300 * time.Millisecond)
		press("d")
		ui.waitDone("the workbench is down", "Bringing the workbench down", 5*time.Minute, nil)
		press("q")
		waitScreen("tether exits", 30*time.Second, func(g Gomega, s string) {
			g.Expect(s).To(ContainSubstring("tether exited with status 0"))
		})
	}, SpecTimeout(60*time.Minute))
})
