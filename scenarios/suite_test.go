package scenarios

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/fleet"
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

// upWorkbench brings a new isolated workbench up with `tether up args...`,
// fails the node if up fails, and takes the workbench down when the node
// ends (a BeforeAll's: after the last spec of its Ordered container).
func upWorkbench(ctx context.Context, args ...string) (*harness.Driver, harness.Result) {
	GinkgoHelper()
	wb := newWorkbench()
	res := wb.Run(ctx, append([]string{"up"}, args...)...)
	Expect(res.ExitCode).To(Equal(0), "tether up failed:\n%s", res.Stderr)
	DeferCleanup(func(ctx SpecContext) { wb.Run(ctx, "down") }, NodeTimeout(2*time.Minute))
	return wb, res
}

// expectSpokeOnHub checks what the hub shows of spoke: its sample
// Application Synced and Healthy, its agent connected.
func expectSpokeOnHub(ctx context.Context, hub dynamic.Interface, spoke string) {
	GinkgoHelper()
	u, err := hub.Resource(v1alpha1.ApplicationsResource).Namespace(spoke).Get(ctx, fleet.SampleApp, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	sync, _, _ := unstructured.NestedString(u.Object, "status", "sync", "status")
	health, _, _ := unstructured.NestedString(u.Object, "status", "health", "status")
	Expect([]string{sync, health}).To(Equal([]string{"Synced", "Healthy"}), spoke)
	a, err := hub.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Get(ctx, spoke, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	connected, _, _ := unstructured.NestedBool(a.Object, "status", "connected")
	Expect(connected).To(BeTrue(), "agent %s", spoke)
}
