package scenarios

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/scenarios/harness"
)

// The headline debug flow (docs/debugging.md): intercept the principal's
// Service on the hub, run the principal locally, and watch the in-cluster
// agents come to it; restart it and see them come back; stop the intercept
// and the supervised principal serves again.
var _ = Describe("debug the principal through an intercept", Ordered, Label("embedded", "intercept"), func() {
	spokes := []string{"spoke-1", "spoke-2"}
	var (
		wb        *harness.Workbench
		lib       *cluster.Workbench
		st        *fleet.State
		hubCS     *kubernetes.Clientset
		hubDyn    dynamic.Interface
		hubAdmin  string
		tmp       string
		localAddr string
		local     *harness.Process
		icpt      *harness.Process
		origSvc   *corev1.Service
		// sinceIntercept is the supervised principal's log length when
		// the intercept started: after it, no agent may connect there
		// until the intercept stops.
		sinceIntercept int
	)
	fleetDir := func() string { return filepath.Join(wb.StateDir, "fleet") }
	supervisedLog := func() string {
		b, _ := os.ReadFile(filepath.Join(fleetDir(), "logs", "principal.log"))
		return string(b)
	}
	// diagnostics is every component's log, for failure messages: which
	// principal an agent reached is only visible there.
	diagnostics := func() string {
		var b strings.Builder
		logs, _ := filepath.Glob(filepath.Join(fleetDir(), "logs", "*.log"))
		local, _ := filepath.Glob(filepath.Join(tmp, "*.log"))
		for _, f := range append(logs, local...) {
			data, _ := os.ReadFile(f)
			fmt.Fprintf(&b, "\n--- %s:\n%s", filepath.Base(f), data)
		}
		return b.String()
	}
	tetherArgs := func(args ...string) []string {
		return append([]string{"--state-dir", wb.StateDir, "--cache-dir", wb.CacheDir, "--kubeconfig", wb.Kubeconfig}, args...)
	}
	// connected checks that log, from offset on, shows every spoke's
	// agent connecting.
	connected := func(log func() string, from int) func(Gomega) {
		return func(g Gomega) {
			out := log()
			g.Expect(len(out)).To(BeNumerically(">=", from))
			out = out[from:]
			for _, s := range spokes {
				g.Expect(out).To(MatchRegexp(`msg="agent connected" agent=%s `, s), "agent %s", s)
			}
		}
	}
	// startLocal runs the principal the way a developer would: from the
	// hub's admin kubeconfig and the workbench's principal certificate.
	startLocal := func(name string) *harness.Process {
		GinkgoHelper()
		p, err := harness.Start(name, tetherBin, filepath.Join(tmp, name+".log"), nil,
			"principal", "--kubeconfig", hubAdmin, "--listen", localAddr, "--http", "127.0.0.1:0",
			"--tls-dir", filepath.Join(fleetDir(), "tls", "principal"), "-v")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() error {
			c, err := net.DialTimeout("tcp", localAddr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}).WithTimeout(30*time.Second).Should(Succeed(), func() string { return p.Output() })
		return p
	}
	app := func(ctx context.Context, spoke string) *v1alpha1.Application {
		u, err := hubDyn.Resource(v1alpha1.ApplicationsResource).Namespace(spoke).Get(ctx, fleet.SampleApp, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		a, err := v1alpha1.ApplicationFrom(u)
		Expect(err).NotTo(HaveOccurred())
		return a
	}
	serviceAsItWas := func(g Gomega) {
		s, err := hubCS.CoreV1().Services(deploy.DefaultNamespace).Get(context.Background(), deploy.PrincipalName, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.Spec.Selector).To(Equal(origSvc.Spec.Selector))
		g.Expect(s.Annotations).To(Equal(origSvc.Annotations))
		g.Expect(s.Spec.Ports).To(Equal(origSvc.Spec.Ports))
	}

	BeforeAll(func(ctx SpecContext) {
		if scenarioProvider() != cluster.ProviderEmbedded {
			Skip("intercepts run on the embedded provider only; TETHER_SCENARIO_PROVIDER=" + scenarioProvider())
		}
		wb = newWorkbench()
		tmp = GinkgoT().TempDir()
		res := wb.Run(ctx, "up", "--provider", "embedded", "--spokes", "2")
		Expect(res.ExitCode).To(Equal(0), "tether up failed:\n%s", res.Stderr)
		DeferCleanup(func(ctx SpecContext) { wb.Run(ctx, "down") }, NodeTimeout(2*time.Minute))
		// The processes outlive the spec that starts them (the container is
		// Ordered), so they are cleaned up here, before down.
		DeferCleanup(func() {
			for _, p := range []*harness.Process{icpt, local} {
				if p != nil && !p.Exited() {
					p.Stop()
				}
			}
		})

		var err error
		lib, err = cluster.New(cluster.Options{StateDir: wb.StateDir, CacheDir: wb.CacheDir, Kubeconfig: wb.Kubeconfig})
		Expect(err).NotTo(HaveOccurred())
		st, err = fleet.Load(lib)
		Expect(err).NotTo(HaveOccurred())
		Expect(st).NotTo(BeNil())
		Expect(st.PrincipalService).NotTo(BeEmpty())
		Expect(st.PrincipalService).NotTo(Equal(st.Principal))
		Expect(res.Stdout).To(ContainSubstring("Agents dial the principal's Service hub/tether-system/tether-principal:8443 at " + st.PrincipalService))
		clusters, err := lib.Clusters()
		Expect(err).NotTo(HaveOccurred())
		hubAdmin = clusters[0].AdminKubeconfig
		hubCS, err = wb.Client("hub")
		Expect(err).NotTo(HaveOccurred())
		cfg, err := wb.RESTConfig("hub")
		Expect(err).NotTo(HaveOccurred())
		hubDyn, err = dynamic.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		origSvc, err = hubCS.CoreV1().Services(deploy.DefaultNamespace).Get(ctx, deploy.PrincipalName, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("agents dial the principal's Service, and reach the supervised principal through it")
		for _, s := range spokes {
			b, err := os.ReadFile(filepath.Join(fleetDir(), "logs", "agent-"+s+".log"))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).To(ContainSubstring(`msg="connected to principal" address=` + st.PrincipalService))
		}
		Eventually(connected(supervisedLog, 0)).WithTimeout(30 * time.Second).Should(Succeed())
		status := wb.Run(ctx, "status")
		Expect(status.Stdout).To(MatchRegexp(`service-proxy running \(pid \d+\)`))
	}, NodeTimeout(10*time.Minute))

	It("carries the agents' streams to a principal run locally", func(ctx SpecContext) {
		localAddr = freeAddr()
		local = startLocal("local-principal")
		sinceIntercept = len(supervisedLog())
		icpt, _ = harness.Start("intercept", tetherBin, filepath.Join(tmp, "intercept.log"), nil,
			tetherArgs("intercept", "start", "hub/"+deploy.DefaultNamespace+"/"+deploy.PrincipalName,
				"--port", fmt.Sprint(deploy.PrincipalPort), "--to", localAddr, "-v")...)
		Eventually(icpt.Output).WithTimeout(60*time.Second).Should(ContainSubstring("press Ctrl-C"), func() string { return icpt.Output() })
		started := time.Now()
		// The service proxy closes the agents' streams to the supervised
		// principal when its pod leaves the Service's endpoints; they
		// reconnect through the Service, which now leads here.
		Eventually(connected(local.Output, 0)).WithTimeout(90*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), diagnostics)
		fmt.Fprintf(GinkgoWriter, "both agents connected to the local principal %v after the intercept was in place\n", time.Since(started).Round(time.Millisecond))
		Expect(supervisedLog()[sinceIntercept:]).To(MatchRegexp(`msg="agent disconnected" agent=spoke-1`))
	}, SpecTimeout(3*time.Minute))

	It("lets a commit and a sync reach the spokes, with status coming back through the local principal", func(ctx SpecContext) {
		sha, err := fleet.MakeChange(ctx, lib, 3)
		Expect(err).NotTo(HaveOccurred())
		// The Git server's push webhook goes to port 8080 of the Service,
		// which the intercept leaves with the supervised principal: it has
		// no agents now, so ask each spoke to fetch instead of waiting for
		// its poll.
		for _, s := range spokes {
			res := wb.Run(ctx, "app", "refresh", fleet.SampleApp, "-n", deploy.DefaultNamespace, "--context", "tether-"+s)
			Expect(res.ExitCode).To(Equal(0), res.Stderr)
		}
		Eventually(func(g Gomega) {
			for _, s := range spokes {
				a := app(ctx, s)
				g.Expect(a.Status.Sync.Revision).To(Equal(sha), s)
				g.Expect(a.Status.Sync.Status).To(Equal(v1alpha1.SyncStatusSynced), s)
				g.Expect(a.Status.Health.Status).To(Equal("Healthy"), s)
			}
		}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Succeed(), diagnostics)
		for _, s := range spokes {
			cs, err := wb.Client(s)
			Expect(err).NotTo(HaveOccurred())
			d, err := cs.AppsV1().Deployments(fleet.SampleNamespace).Get(ctx, "web", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(*d.Spec.Replicas).To(Equal(int32(3)), s)
		}

		res := wb.Run(ctx, "app", "sync", fleet.SampleApp, "-n", "spoke-1", "--context", "tether-hub", "--timeout", "90s")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(res.Stdout).To(HavePrefix("Succeeded"))
		Expect(local.Output()).To(MatchRegexp(`msg="operation queued" agent=spoke-1 app=sample`), diagnostics)
		// All of it went through the local principal: the agents never
		// went back to the supervised one.
		Expect(icpt.Exited()).To(BeFalse(), diagnostics)
		Expect(supervisedLog()[sinceIntercept:]).NotTo(ContainSubstring(`msg="agent connected"`), diagnostics)
	}, SpecTimeout(4*time.Minute))

	It("sees the agents reconnect when the local principal restarts", func(ctx SpecContext) {
		local.Stop()
		Expect(local.Output()).NotTo(ContainSubstring("panic"))
		local = startLocal("local-principal-2")
		Eventually(connected(local.Output, 0)).WithTimeout(90*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), diagnostics)
		Expect(supervisedLog()[sinceIntercept:]).NotTo(ContainSubstring(`msg="agent connected"`), diagnostics)
	}, SpecTimeout(3*time.Minute))

	It("gives the agents back to the supervised principal on stop, with the Service as it was", func(ctx SpecContext) {
		from := len(supervisedLog())
		icpt.Stop()
		Expect(icpt.Output()).To(ContainSubstring("is as it was"))
		Eventually(serviceAsItWas).WithTimeout(10 * time.Second).Should(Succeed())
		Eventually(connected(supervisedLog, from)).WithTimeout(90*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), diagnostics)
		Eventually(local.Output).WithTimeout(10 * time.Second).Should(MatchRegexp(`msg="agent disconnected" agent=spoke-2`))
		localFrom := len(local.Output())

		By("the supervised principal serves: an operation goes down and its result comes back")
		res := wb.Run(ctx, "app", "sync", fleet.SampleApp, "-n", "spoke-2", "--context", "tether-hub", "--timeout", "90s")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(supervisedLog()[from:]).To(MatchRegexp(`msg="operation queued" agent=spoke-2 app=sample`), diagnostics)
		// The local principal, still running, sees the operation too and
		// queues it, but no agent comes to take it.
		Expect(local.Output()[localFrom:]).NotTo(ContainSubstring(`msg="agent connected"`), diagnostics)
		for _, s := range spokes {
			Expect(app(ctx, s).Status.Sync.Status).To(Equal(v1alpha1.SyncStatusSynced), s)
		}
	}, SpecTimeout(3*time.Minute))
})
