package scenarios

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tether-dev/tether/scenarios/harness"
)

// tmuxUI is tether's terminal UI running in a private tmux server (its
// socket in the spec's temporary folder, so the scenario neither sees nor
// disturbs the user's sessions and leaves no socket behind). The shell
// reports how tether ended and keeps the pane open, so the exit status is on
// the screen to assert on. Every assertion is on the screen as tmux shows it.
type tmuxUI struct {
	ctx     context.Context
	bin     string
	socket  string
	session string
}

// startTmuxUI runs tether for wb in work (where its tether.yaml is) and
// kills the tmux server when the spec ends.
func startTmuxUI(ctx context.Context, tmuxBin string, wb *harness.Driver, work, session string) *tmuxUI {
	GinkgoHelper()
	t := &tmuxUI{ctx: ctx, bin: tmuxBin, socket: filepath.Join(work, "tmux.sock"), session: session}
	DeferCleanup(func(ctx SpecContext) { _, _ = t.run(ctx, "kill-server") }, NodeTimeout(30*time.Second))
	tether := strings.Join([]string{shq(wb.Bin), "--state-dir", shq(wb.StateDir), "--cache-dir", shq(wb.CacheDir),
		"--kubeconfig", shq(wb.Kubeconfig)}, " ")
	script := tether + `; echo "tether exited with status $?"; sleep 3600`
	out, err := t.run(ctx, "new-session", "-d", "-s", session, "-x", "160", "-y", "45", "-c", work,
		"-e", "KUBECONFIG="+wb.Kubeconfig, "sh", "-c", script)
	Expect(err).NotTo(HaveOccurred(), "tmux new-session: %s", out)
	return t
}

// startUIWith runs the UI for wb in a new folder whose tether.yaml is
// config: what the UI's u brings up (the file pins the provider, so a
// Docker engine on the machine does not pick kind for an embedded run).
// The UI leaves the system up when it quits, as `tether up` does; a
// cleanup takes it down, within downTimeout, whatever happened.
func startUIWith(ctx context.Context, tmuxBin string, wb *harness.Driver, config, session string, downTimeout time.Duration) *tmuxUI {
	GinkgoHelper()
	work := GinkgoT().TempDir()
	Expect(os.WriteFile(filepath.Join(work, "tether.yaml"), []byte(config), 0o644)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		res := wb.Run(ctx, "down")
		Expect(res.ExitCode).To(Equal(0), "tether down: %s", res.Stderr)
	}, NodeTimeout(downTimeout))
	return startTmuxUI(ctx, tmuxBin, wb, work, session)
}

func (t *tmuxUI) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, t.bin, append([]string{"-S", t.socket}, args...)...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (t *tmuxUI) screen() string {
	GinkgoHelper()
	out, err := t.run(t.ctx, "capture-pane", "-p", "-t", t.session)
	Expect(err).NotTo(HaveOccurred(), "tmux capture-pane: %s", out)
	return out
}

func (t *tmuxUI) press(keys ...string) {
	GinkgoHelper()
	GinkgoWriter.Printf("press %v\n", keys)
	out, err := t.run(t.ctx, append([]string{"send-keys", "-t", t.session}, keys...)...)
	Expect(err).NotTo(HaveOccurred(), "tmux send-keys: %s", out)
}

// waitScreen polls the screen until match accepts it; on timeout the last
// screen is in the failure.
func (t *tmuxUI) waitScreen(what string, timeout time.Duration, match func(g Gomega, s string)) string {
	GinkgoHelper()
	var last string
	Eventually(func(g Gomega) {
		last = t.screen()
		match(g, last)
	}).WithContext(t.ctx).WithTimeout(timeout).WithPolling(time.Second).Should(Succeed(), func() string { return what + "; last screen:\n" + last })
	GinkgoWriter.Printf("--- %s:\n%s\n", what, last)
	return last
}

// waitDone waits, as waitScreen does, until the screen says a long
// operation of the UI (up, down, adding or removing a spoke) is "✓ done";
// a screen that says it failed ends the wait at once, with the screen,
// instead of after timeout. match checks the rest of the screen.
func (t *tmuxUI) waitDone(what, operation string, timeout time.Duration, match func(g Gomega, s string)) string {
	GinkgoHelper()
	return t.waitScreen(what, timeout, func(g Gomega, s string) {
		if strings.Contains(s, "failed after") {
			StopTrying(operation+" failed").Attach("screen", s).Now()
		}
		g.Expect(s).To(ContainSubstring(operation + " ✓ done in"))
		if match != nil {
			match(g, s)
		}
	})
}

// clusterReady matches a cluster's row on the Clusters screen that says
// it runs on provider and is ready.
func clusterReady(name, provider string) string {
	return fmt.Sprintf(`(?m)^%s\s+\S+\s+%s\s+https://\S+\s+\S+\s+✓ ready`, regexp.QuoteMeta(name), regexp.QuoteMeta(provider))
}

// shq quotes s for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
