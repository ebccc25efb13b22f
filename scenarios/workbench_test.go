package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/scenarios/harness"
)

// The foundation scenario: up hub + 2 spokes; on each spoke a Deployment
// becomes Available and a deleted namespace disappears; a dead process is
// reported and restarted; down leaves no process and no port behind.
var _ = Describe("workbench", Ordered, Label("embedded", "cluster"), func() {
	var wb *harness.Driver
	spokes := []string{"spoke-1", "spoke-2"}
	all := append([]string{"hub"}, spokes...)

	// status reads the workbench through the public library, as the TUI
	// will: it gives the processes and ports `down` must clean up.
	status := func(ctx SpecContext) []cluster.ClusterStatus {
		lib, err := cluster.New(cluster.Options{StateDir: wb.StateDir, CacheDir: wb.CacheDir, Kubeconfig: wb.Kubeconfig})
		Expect(err).NotTo(HaveOccurred())
		_, st, err := lib.Status(ctx)
		Expect(err).NotTo(HaveOccurred())
		return st
	}

	BeforeAll(func(ctx SpecContext) {
		if scenarioProvider() != cluster.ProviderEmbedded {
			Skip("the workbench scenario inspects embedded processes; TETHER_SCENARIO_PROVIDER=" + scenarioProvider())
		}
		// The first run on a machine compiles the control plane; that is
		// what the long timeout is for. up's down is a safety net if a
		// spec fails before the down spec runs.
		var res harness.Result
		wb, res = upWorkbench(ctx, "--provider", "embedded")
		Expect(res.Stdout).To(ContainSubstring("The workbench is up (embedded provider)"))
		Expect(res.Stdout).To(ContainSubstring("Every spoke's sample Application is Synced and Healthy on the hub"))
		for _, c := range all {
			Expect(res.Stdout).To(ContainSubstring("tether-" + c))
		}
	}, NodeTimeout(5*time.Minute))

	It("merges a tether-<cluster> context per cluster that kubectl can use", func(ctx SpecContext) {
		kc, err := clientcmd.LoadFromFile(wb.Kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		Expect(kc.CurrentContext).To(Equal("tether-hub"))
		for _, c := range all {
			Expect(kc.Contexts).To(HaveKey("tether-" + c))
			cs, err := wb.Client(c)
			Expect(err).NotTo(HaveOccurred())
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(nodes.Items).NotTo(BeEmpty(), "cluster %s has no nodes", c)
			Expect(nodeReady(nodes.Items[0])).To(BeTrue(), "node of %s is not Ready", c)
		}
		// The first spec of an Ordered container also carries BeforeAll's
		// time (bringing the workbench up).
	}, SpecTimeout(5*time.Minute))

	It("runs the complete GitOps system: every spoke's sample Synced and Healthy on the hub, agents connected", func(ctx SpecContext) {
		hubCfg, err := wb.RESTConfig("hub")
		Expect(err).NotTo(HaveOccurred())
		hub := dynamic.NewForConfigOrDie(hubCfg)
		for _, s := range spokes {
			expectSpokeOnHub(ctx, hub, s)
			// The manifests kind would run were applied and validated here.
			cs, err := wb.Client(s)
			Expect(err).NotTo(HaveOccurred())
			_, err = cs.AppsV1().Deployments(cluster.SystemNamespace).Get(ctx, "tether-agent", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			d, err := cs.AppsV1().Deployments(fleet.SampleNamespace).Get(ctx, "web", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "the sample did not reach %s", s)
			Expect(d.Labels).To(HaveKeyWithValue("tether.dev/spoke", s))
		}
		res := wb.Run(ctx, "status")
		Expect(res.Stdout).To(MatchRegexp(`(?s)GitOps components.*\ngit +running +\d+ +0 .*\nprincipal +running +\d+ +0 .*\nservice-proxy +running +\d+ +0 .*\nagent-spoke-1 +running +\d+ +0 .*\nagent-spoke-2 +running +\d+ +0 `))
	}, SpecTimeout(time.Minute))

	It("reports every cluster ready", func(ctx SpecContext) {
		res := wb.Run(ctx, "status")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		for _, c := range status(ctx) {
			Expect(c.Ready).To(BeTrue(), "%s: %s", c.Name, c.Reason)
			Expect(c.Processes).To(HaveLen(5))
		}
		Expect(res.Stdout).NotTo(ContainSubstring(" no "))
	}, SpecTimeout(time.Minute))

	It("rolls a Deployment out to Available on each spoke", func(ctx SpecContext) {
		for _, s := range spokes {
			cs, err := wb.Client(s)
			Expect(err).NotTo(HaveOccurred())
			dep := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](2),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
					},
				},
			}
			_, err = cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		for _, s := range spokes {
			cs, err := wb.Client(s)
			Expect(err).NotTo(HaveOccurred())
			Eventually(func(g Gomega) {
				d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(d.Status.AvailableReplicas).To(Equal(int32(2)))
				g.Expect(deploymentAvailable(d)).To(BeTrue())
			}).WithContext(ctx).WithPolling(250*time.Millisecond).Should(Succeed(), "Deployment on %s", s)
		}
	}, SpecTimeout(3*time.Minute))

	It("deletes a namespace and everything in it", func(ctx SpecContext) {
		for _, s := range spokes {
			cs, err := wb.Client(s)
			Expect(err).NotTo(HaveOccurred())
			ns := "doomed"
			_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})).To(Succeed())
			Eventually(func() bool {
				_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			}).WithContext(ctx).WithPolling(250*time.Millisecond).Should(BeTrue(), "namespace on %s never went away", s)
		}
	}, SpecTimeout(3*time.Minute))

	It("adopts its clusters through the existing provider and removes only what that made", func(ctx SpecContext) {
		// spoke-1 loses tether's namespace so the existing workbench has
		// something of its own to create; the hub keeps it, so there the
		// namespace belongs to someone else and must survive.
		spoke, err := wb.Client("spoke-1")
		Expect(err).NotTo(HaveOccurred())
		Expect(spoke.CoreV1().Namespaces().Delete(ctx, cluster.SystemNamespace, metav1.DeleteOptions{})).To(Succeed())
		Eventually(func() bool {
			_, err := spoke.CoreV1().Namespaces().Get(ctx, cluster.SystemNamespace, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).WithContext(ctx).Should(BeTrue())

		ext := newWorkbench()
		ext.Kubeconfig = wb.Kubeconfig // the contexts it adopts live there
		res := ext.Run(ctx, "up", "--provider", "existing", "--hub", "ext-hub", "--spoke", "ext-spoke",
			"--context", "ext-hub=tether-hub", "--context", "ext-spoke=tether-spoke-1", "--clusters-only")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		extSpoke, err := ext.Client("ext-spoke")
		Expect(err).NotTo(HaveOccurred())
		ns, err := extSpoke.CoreV1().Namespaces().Get(ctx, cluster.SystemNamespace, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(ns.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "tether"))

		res = ext.Run(ctx, "down")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Eventually(func() bool {
			_, err := spoke.CoreV1().Namespaces().Get(ctx, cluster.SystemNamespace, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).WithContext(ctx).Should(BeTrue(), "the namespace the existing workbench made is still there")
		hub, err := wb.Client("hub")
		Expect(err).NotTo(HaveOccurred())
		_, err = hub.CoreV1().Namespaces().Get(ctx, cluster.SystemNamespace, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "down removed a namespace it did not create")
		// The clusters themselves are untouched and still answer.
		_, err = spoke.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		kc, err := clientcmd.LoadFromFile(wb.Kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		Expect(kc.Contexts).To(HaveKey("tether-hub"))
		Expect(kc.Contexts).NotTo(HaveKey("tether-ext-hub"))
	}, SpecTimeout(3*time.Minute))

	It("reports a dead process and restarts it on the next up, keeping the data", func(ctx SpecContext) {
		var victim cluster.ClusterStatus
		for _, c := range status(ctx) {
			if c.Name == "spoke-2" {
				victim = c
			}
		}
		var pid int
		for _, p := range victim.Processes {
			if p.Name == "kube-scheduler" {
				pid = p.PID
			}
		}
		Expect(pid).NotTo(BeZero())
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		Eventually(func() string {
			return wb.Run(ctx, "status").Stdout
		}).WithContext(ctx).Should(And(ContainSubstring("kube-scheduler (pid %d) is not running", pid), ContainSubstring("DEAD")))

		res := wb.Run(ctx, "up")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(res.Stderr).To(ContainSubstring("restart cluster spoke-2"))
		Expect(res.Stderr).NotTo(ContainSubstring("restart cluster spoke-1"))
		for _, c := range status(ctx) {
			Expect(c.Ready).To(BeTrue(), "%s: %s", c.Name, c.Reason)
		}
		// etcd's data survived the restart: the Deployment is still there.
		cs, err := wb.Client("spoke-2")
		Expect(err).NotTo(HaveOccurred())
		_, err = cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(3*time.Minute))

	It("is idempotent: a second up reattaches without restarting anything", func(ctx SpecContext) {
		before := status(ctx)
		res := wb.Run(ctx, "up")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(res.Stderr).NotTo(ContainSubstring("start control plane"))
		after := status(ctx)
		Expect(pids(after)).To(Equal(pids(before)))
	}, SpecTimeout(2*time.Minute))

	It("goes down leaving no process, port, folder or context behind", func(ctx SpecContext) {
		st := status(ctx)
		var allPIDs, allPorts []int
		for _, c := range st {
			for _, p := range c.Processes {
				allPIDs = append(allPIDs, p.PID)
			}
			allPorts = append(allPorts, c.Ports...)
		}
		Expect(allPIDs).To(HaveLen(15))
		Expect(allPorts).To(HaveLen(15))
		lib, err := cluster.New(cluster.Options{StateDir: wb.StateDir, CacheDir: wb.CacheDir, Kubeconfig: wb.Kubeconfig})
		Expect(err).NotTo(HaveOccurred())
		comps, err := fleet.Components(lib)
		Expect(err).NotTo(HaveOccurred())
		// Git server, principal, the service proxy serving the principal's
		// Service, and per spoke an agent, the sample's stand-in server and
		// the spoke's service proxy.
		var names []string
		for _, c := range comps {
			names = append(names, c.Name)
		}
		Expect(names).To(ConsistOf("git", "principal", "service-proxy",
			"agent-spoke-1", "sample-spoke-1", "service-proxy-spoke-1",
			"agent-spoke-2", "sample-spoke-2", "service-proxy-spoke-2"))
		for _, c := range comps {
			allPIDs = append(allPIDs, c.PID)
		}

		res := wb.Run(ctx, "down")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		for _, pid := range allPIDs {
			Expect(harness.ProcessGone(pid)).To(BeTrue(), "pid %d still runs", pid)
		}
		for _, port := range allPorts {
			Expect(harness.PortFree(port)).To(BeTrue(), "port %d still taken", port)
		}
		entries, err := os.ReadDir(wb.StateDir)
		Expect(err).NotTo(HaveOccurred())
		for _, e := range entries {
			Expect(e.Name()).To(Equal("lock"), "left in the state folder: %s", filepath.Join(wb.StateDir, e.Name()))
		}
		kc, err := clientcmd.LoadFromFile(wb.Kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		for name := range kc.Contexts {
			Expect(strings.HasPrefix(name, "tether-")).To(BeFalse(), "context %s left", name)
		}
		Expect(wb.Run(ctx, "status").Stdout).To(ContainSubstring("No workbench"))
	}, SpecTimeout(2*time.Minute))
})

func pids(st []cluster.ClusterStatus) []string {
	var out []string
	for _, c := range st {
		for _, p := range c.Processes {
			out = append(out, fmt.Sprintf("%s/%s/%d", c.Name, p.Name, p.PID))
		}
	}
	return out
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
