package scenarios

import (
	"os"
	"os/exec"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/scenarios/harness"
)

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "tether scenarios")
}

// tetherBin is built once per suite run; every scenario drives it like a
// user would.
var tetherBin string

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	root, err := harness.ModuleRoot()
	Expect(err).NotTo(HaveOccurred())
	dir, err := os.MkdirTemp("", "tether-scenarios-bin-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	bin, err := harness.BuildTether(ctx, root, dir)
	Expect(err).NotTo(HaveOccurred())
	// Compile the control plane once, up front, so no scenario's timeout
	// is spent on it (on a fresh machine this is the long part).
	cache, err := cluster.DefaultCacheDir()
	Expect(err).NotTo(HaveOccurred())
	prep := exec.CommandContext(ctx, bin, "prepare", "--cache-dir", cache)
	prep.Stdout, prep.Stderr = GinkgoWriter, GinkgoWriter
	Expect(prep.Run()).To(Succeed())
	return []byte(bin)
}, func(bin []byte) {
	tetherBin = string(bin)
}, NodeTimeout(50*time.Minute))

// scenarioProvider is the provider the cluster scenarios run on: embedded
// unless TETHER_SCENARIO_PROVIDER says otherwise (task e2e:kind sets kind).
func scenarioProvider() string {
	if p := os.Getenv("TETHER_SCENARIO_PROVIDER"); p != "" {
		return p
	}
	return cluster.ProviderEmbedded
}

// newWorkbench makes an isolated workbench: its own state folder and
// kubeconfig, the user's binary cache (so the control plane is compiled once
// per machine, not once per run).
func newWorkbench() *harness.Driver {
	cache, err := cluster.DefaultCacheDir()
	Expect(err).NotTo(HaveOccurred())
	dir := GinkgoT().TempDir()
	return &harness.Driver{
		Bin:        tetherBin,
		StateDir:   dir + "/state",
		CacheDir:   cache,
		Kubeconfig: dir + "/kubeconfig",
		Log:        GinkgoWriter,
	}
}
