package scenarios

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/scenarios/harness"
)

// Bad input gets a one-line error that says what to do, and nothing
// half-created is left behind.
var _ = Describe("bad input", Label("fast"), func() {
	var wb *harness.Driver

	BeforeEach(func() {
		wb = newWorkbench()
		// A cache of its own: nothing here may build or use binaries.
		wb.CacheDir = GinkgoT().TempDir()
	})

	expectRefused := func(res harness.Result, wants ...string) {
		GinkgoHelper()
		Expect(res.ExitCode).To(Equal(1), "stdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
		msg := strings.TrimSpace(res.Stderr)
		Expect(strings.Count(msg, "\n")).To(BeZero(), "error is not one line:\n%s", msg)
		for _, w := range wants {
			Expect(msg).To(ContainSubstring(w))
		}
		_, err := os.Stat(filepath.Join(wb.StateDir, "state.json"))
		Expect(os.IsNotExist(err)).To(BeTrue(), "a state file was left behind")
		_, err = os.Stat(filepath.Join(wb.StateDir, "clusters"))
		Expect(os.IsNotExist(err)).To(BeTrue(), "cluster folders were left behind")
		_, err = os.Stat(wb.Kubeconfig)
		Expect(os.IsNotExist(err)).To(BeTrue(), "the kubeconfig was written")
	}

	It("refuses an unknown provider", func(ctx SpecContext) {
		expectRefused(wb.Run(ctx, "up", "--provider", "minikube"), `unknown provider "minikube"`, "use one of kind, embedded, existing")
	})

	It("refuses a cluster name that is not DNS-safe", func(ctx SpecContext) {
		expectRefused(wb.Run(ctx, "up", "--provider", "embedded", "--spoke", "Spoke_1"), `"Spoke_1" is not DNS-safe`, "lower-case letters")
	})

	It("refuses an API server port that is already taken, before building anything", func(ctx SpecContext) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		cfg := filepath.Join(GinkgoT().TempDir(), "tether.yaml")
		Expect(os.WriteFile(cfg, []byte("provider: embedded\nhub:\n  name: hub\n  apiServerPort: "+strconv.Itoa(port)+"\nspokes:\n- name: spoke-1\n"), 0o644)).To(Succeed())
		expectRefused(wb.Run(ctx, "up", "--config", cfg), "port "+strconv.Itoa(port), "already in use", "apiServerPort")
		entries, _ := os.ReadDir(wb.CacheDir)
		Expect(entries).To(BeEmpty(), "something was built into the cache")
	})

	It("refuses an unknown field in tether.yaml", func(ctx SpecContext) {
		cfg := filepath.Join(GinkgoT().TempDir(), "tether.yaml")
		Expect(os.WriteFile(cfg, []byte("spokez: 3\n"), 0o644)).To(Succeed())
		expectRefused(wb.Run(ctx, "up", "--config", cfg), "tether.yaml", "spokez")
	})

	It("refuses --provider kind when no Docker engine answers", func(ctx SpecContext) {
		if cluster.DockerEngineAnswers(ctx) == nil {
			Skip("a Docker engine answers here, so --provider kind is valid")
		}
		expectRefused(wb.Run(ctx, "up", "--provider", "kind"), "needs a Docker engine", "--provider embedded")
	})

	It("says what to check when the control plane cannot be built, and leaves nothing", func(ctx SpecContext) {
		// No module proxy and an empty module cache: the build must fail
		// the way it does on a machine that cannot reach the proxy.
		wb.Env = []string{"GOPROXY=off", "GOMODCACHE=" + GinkgoT().TempDir(), "GOFLAGS=-mod=mod"}
		res := wb.Run(ctx, "up", "--provider", "embedded", "--spokes", "0")
		Expect(res.ExitCode).To(Equal(1))
		last := lastLine(res.Stderr)
		Expect(last).To(ContainSubstring("build etcd"))
		Expect(last).To(ContainSubstring("GOPROXY (off)"))
		Expect(last).To(ContainSubstring("full log is"))
		_, err := os.Stat(filepath.Join(wb.StateDir, "state.json"))
		Expect(os.IsNotExist(err)).To(BeTrue(), "a state file was left behind")
	}, SpecTimeout(5*time.Minute))
})

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
