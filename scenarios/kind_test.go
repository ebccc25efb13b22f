package scenarios

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/scenarios/harness"
)

// The cluster scenario on real kind clusters (go tool task e2e:kind). It
// needs a Docker engine and skips, saying so, where none answers.
var _ = Describe("workbench on kind", Ordered, Label("kind-only"), func() {
	var wb *harness.Workbench

	BeforeAll(func(ctx SpecContext) {
		if err := cluster.DockerEngineAnswers(ctx); err != nil {
			Skip("kind scenarios need a Docker engine: " + err.Error())
		}
		wb = newWorkbench()
		res := wb.Run(ctx, "up", "--provider", "kind", "--spokes", "2")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		DeferCleanup(func(ctx SpecContext) { wb.Run(ctx, "down") }, NodeTimeout(5*time.Minute))
	}, NodeTimeout(20*time.Minute))

	It("gives every cluster a Ready node behind its tether-* context", func(ctx SpecContext) {
		for _, c := range []string{"hub", "spoke-1", "spoke-2"} {
			cs, err := wb.Client(c)
			Expect(err).NotTo(HaveOccurred())
			Eventually(func(g Gomega) {
				nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(nodes.Items).NotTo(BeEmpty())
				g.Expect(nodeReady(nodes.Items[0])).To(BeTrue())
			}).WithContext(ctx).Should(Succeed(), c)
		}
	}, SpecTimeout(25*time.Minute)) // includes BeforeAll: kind pulls its node image

	It("records an address on the kind network through which spokes reach the hub", func(ctx SpecContext) {
		lib, err := cluster.New(cluster.Options{StateDir: wb.StateDir, CacheDir: wb.CacheDir, Kubeconfig: wb.Kubeconfig})
		Expect(err).NotTo(HaveOccurred())
		clusters, err := lib.Clusters()
		Expect(err).NotTo(HaveOccurred())
		Expect(clusters[0].Name).To(Equal("hub"))
		Expect(clusters[0].InternalEndpoint).To(MatchRegexp(`^https://\d+\.\d+\.\d+\.\d+:6443$`))
	})

	It("goes down and removes the contexts", func(ctx SpecContext) {
		res := wb.Run(ctx, "down")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		kc, err := clientcmd.LoadFromFile(wb.Kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		Expect(kc.Contexts).NotTo(HaveKey("tether-hub"))
		Expect(wb.Run(ctx, "status").Stdout).To(ContainSubstring("No workbench"))
	}, SpecTimeout(5*time.Minute))
})
