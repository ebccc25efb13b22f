package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/scenarios/harness"
)

// The cluster scenario on real kind clusters (go tool task e2e:kind). It
// needs a Docker engine and skips, saying so, where none answers.
var _ = Describe("workbench on kind", Ordered, Label("kind-only"), func() {
	var (
		wb            *harness.Driver
		volumesBefore []string
	)

	BeforeAll(func(ctx SpecContext) {
		if err := cluster.DockerEngineAnswers(ctx); err != nil {
			if os.Getenv("TETHER_REQUIRE_KIND") != "" {
				Fail("TETHER_REQUIRE_KIND is set (CI) but no Docker engine answers: " + err.Error())
			}
			Skip("kind scenarios need a Docker engine: " + err.Error())
		}
		volumesBefore = dockerLines(ctx, "volume", "ls", "-q")
		wb = newWorkbench()
		// The node image first, on its own clock: on a machine that
		// cannot pull kindest/node this builds one (minutes, once).
		res := wb.Run(ctx, "prepare", "--provider", "kind")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		start := time.Now()
		res = wb.Run(ctx, "up", "--provider", "kind", "--spokes", "2")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		fmt.Fprintf(GinkgoWriter, "kind up of hub + 2 spokes + the GitOps system: %s\n", time.Since(start).Round(time.Second))
		Expect(res.Stdout).To(ContainSubstring("Every spoke's sample Application is Synced and Healthy on the hub"))
		DeferCleanup(func(ctx SpecContext) { wb.Run(ctx, "down") }, NodeTimeout(5*time.Minute))
	}, NodeTimeout(45*time.Minute))

	It("serves the sample from tether's own image on every spoke: pods run, answer with their cluster's name, Synced and Healthy on the hub", func(ctx SpecContext) {
		hubCfg, err := wb.RESTConfig("hub")
		Expect(err).NotTo(HaveOccurred())
		hub := dynamic.NewForConfigOrDie(hubCfg)
		for _, s := range []string{"spoke-1", "spoke-2"} {
			expectSpokeOnHub(ctx, hub, s)
			cs, err := wb.Client(s)
			Expect(err).NotTo(HaveOccurred())
			pods, err := cs.CoreV1().Pods("sample").List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(pods.Items).NotTo(BeEmpty())
			for _, p := range pods.Items {
				Expect(p.Status.Phase).To(Equal(corev1.PodRunning), "%s/%s: a real container, not a kwok pod", s, p.Name)
			}
			// kube-proxy, CoreDNS and the CNI at work: the API server's
			// service proxy reaches a pod behind the Service.
			Eventually(func() (string, error) {
				b, err := cs.CoreV1().Services("sample").ProxyGet("http", "web", "80", "/", nil).DoRaw(ctx)
				return string(b), err
			}).WithContext(ctx).WithTimeout(time.Minute).Should(ContainSubstring(s))
		}
	}, SpecTimeout(3*time.Minute))

	It("carries a commit to the sample repository to every spoke", func(ctx SpecContext) {
		res := wb.Run(ctx, "sample", "scale", "2")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(res.Stdout).To(ContainSubstring("every spoke runs"), "scale watches the commit reach every spoke")
		Expect(res.Stderr).To(MatchRegexp(`✓ watch [0-9a-f]+ reach every spoke`), "with progress on the way")
		hubCfg, err := wb.RESTConfig("hub")
		Expect(err).NotTo(HaveOccurred())
		hub := dynamic.NewForConfigOrDie(hubCfg)
		for _, s := range []string{"spoke-1", "spoke-2"} {
			cs, err := wb.Client(s)
			Expect(err).NotTo(HaveOccurred())
			Eventually(func(g Gomega) {
				d, err := cs.AppsV1().Deployments("sample").Get(ctx, "web", metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(2), "ready pods of sample/web on %s", s)
				sync, health, _ := appStatus(ctx, hub, s, fleet.SampleApp)
				g.Expect([]string{sync, health}).To(Equal([]string{"Synced", "Healthy"}))
			}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
		}
	}, SpecTimeout(4*time.Minute))

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
		Expect(clusters[0].InternalEndpoint).To(MatchRegexp(`^https://tether-[0-9a-f]{6}-hub-control-plane:6443$`), "the hub node container's name on the kind network: its IP can change when Docker restarts")
	})

	// A global intercept of a Service on a spoke: the traffic-agent is a
	// pod of the image `tether up` loaded, the session runs over the
	// API server's port-forward, and stopping puts everything back.
	It("intercepts a Service on a spoke through a traffic-agent pod, and stop restores it", func(ctx SpecContext) {
		const ns, spoke = "kecho", "spoke-1"
		cs, err := wb.Client(spoke)
		Expect(err).NotTo(HaveOccurred())

		By("an in-cluster echo: tether's own image (no pull: kind has it), serving /healthz")
		dep, err := cs.AppsV1().Deployments("tether-system").Get(ctx, "tether-agent", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		image := dep.Spec.Template.Spec.Containers[0].Image
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		})
		uid, nonRoot := int64(65532), true // the image's user (cluster/image.User)
		echo := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "echo-0", Labels: map[string]string{"app": "echo"}},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &nonRoot, RunAsUser: &uid},
				Containers: []corev1.Container{{
					Name: "echo", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
					Args:         []string{"git", "serve", "--root", "/data/repos", "--addr", ":3000", "--health-addr", ":8080"},
					Ports:        []corev1.ContainerPort{{Name: "health", ContainerPort: 8080}},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
						PeriodSeconds: 1},
				}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
		// Admission refuses pods until the new namespace's default
		// ServiceAccount exists, which takes the controller a moment.
		Eventually(func() error {
			_, err := cs.CoreV1().Pods(ns).Create(ctx, echo, metav1.CreateOptions{})
			return err
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
		orig, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "echo", Annotations: map[string]string{"team": "shop"}},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "echo"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
			}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		// Through the API server's service proxy: it picks a ready
		// endpoint of the Service, the path in-cluster clients take
		// minus kube-proxy, and needs no client pod.
		viaService := func() (string, error) {
			b, err := cs.CoreV1().Services(ns).ProxyGet("http", "echo", "80", "/healthz", nil).DoRaw(ctx)
			return strings.TrimSpace(string(b)), err
		}
		Eventually(viaService).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Equal("ok"))

		By("tether intercept start: the agent pod comes up and the Service routes to the laptop")
		localAddr := echoServer("local")
		tmp := GinkgoT().TempDir()
		p, err := harness.Start("kind-intercept", tetherBin, filepath.Join(tmp, "intercept.log"), nil,
			"--state-dir", wb.StateDir, "--cache-dir", wb.CacheDir, "--kubeconfig", wb.Kubeconfig,
			"intercept", "start", spoke+"/"+ns+"/echo", "--port", "80", "--to", localAddr, "-v")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Stop)
		Eventually(p.Output).WithTimeout(3*time.Minute).Should(ContainSubstring("press Ctrl-C"), func() string { return p.Output() })
		agentPod, err := cs.CoreV1().Pods(ns).Get(ctx, record.AgentName("echo"), metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(agentPod.Spec.Containers[0].Image).To(Equal(image), "the agent runs the image read from the spoke's tether-agent Deployment")
		Eventually(viaService).WithContext(ctx).WithTimeout(10 * time.Second).Should(Equal("local"))

		By("a long-lived streaming response comes through the traffic-agent and the tunnel as it is written")
		stream, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces", ns, "services", "echo:80", "proxy", "stream").Stream(ctx)
		Expect(err).NotTo(HaveOccurred())
		sc := bufio.NewScanner(stream)
		var ticks []time.Time
		for sc.Scan() {
			Expect(sc.Text()).To(HavePrefix("local tick"))
			ticks = append(ticks, time.Now())
		}
		stream.Close()
		Expect(ticks).To(HaveLen(30))
		Expect(ticks[29].Sub(ticks[0])).To(BeNumerically(">", 2*time.Second), "the response was buffered, not streamed")

		By("the local process reaches the Service by its DNS name through the intercept's outbound proxy, and is intercepted there too")
		m := regexp.MustCompile(`HTTP_PROXY=(\S+)`).FindStringSubmatch(p.Output())
		Expect(m).To(HaveLen(2))
		u, err := url.Parse(m[1])
		Expect(err).NotTo(HaveOccurred())
		viaProxy := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(u), DisableKeepAlives: true}}
		// Dialed from the agent's pod: cluster DNS, the Service's
		// ClusterIP, kube-proxy, and back to the agent (hairpin), which
		// carries it to the laptop.
		Eventually(func() (string, error) {
			resp, err := viaProxy.Get("http://echo." + ns + ".svc.cluster.local/healthz")
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal("local"))

		By("the agent's readiness probe does not fill its log with warnings")
		logs, err := cs.CoreV1().Pods(ns).GetLogs(agentPod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(logs)).NotTo(ContainSubstring("workbench session refused"))

		By("stop (SIGTERM): the Service is as it was, the original pod answers, and the agent's objects are gone")
		p.Stop()
		Expect(p.Output()).To(ContainSubstring("is as it was"))
		svc, err := cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec).To(Equal(orig.Spec))
		Expect(svc.Annotations).To(Equal(orig.Annotations))
		Eventually(viaService).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal("ok"))
		Eventually(func(g Gomega) {
			expectNoTrafficAgent(g, ctx, cs, ns)
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())

		By("a personal intercept: only requests carrying its header reach the laptop")
		withHeader := func(value string) func() (string, error) {
			return func() (string, error) {
				req := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces", ns, "services", "echo:80", "proxy", "healthz")
				if value != "" {
					req = req.SetHeader("X-Dev", value)
				}
				b, err := req.DoRaw(ctx)
				return strings.TrimSpace(string(b)), err
			}
		}
		personal, err := harness.Start("kind-personal", tetherBin, filepath.Join(tmp, "personal.log"), nil,
			"--state-dir", wb.StateDir, "--cache-dir", wb.CacheDir, "--kubeconfig", wb.Kubeconfig,
			"intercept", "start", spoke+"/"+ns+"/echo", "--port", "80", "--to", localAddr, "--header", "X-Dev=alice", "-v")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(personal.Stop)
		Eventually(personal.Output).WithTimeout(3*time.Minute).Should(ContainSubstring("press Ctrl-C"), func() string { return personal.Output() })
		Eventually(withHeader("alice")).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal("local"))
		Eventually(withHeader("bob")).WithContext(ctx).WithTimeout(10 * time.Second).Should(Equal("ok"))
		Expect(withHeader("")()).To(Equal("ok"), "a request without the header goes to the original pod")

		By("the workbench is SIGKILLed: the traffic-agent's Lease runs out and the Service fails open to the original")
		personal.Kill()
		killed := time.Now()
		Eventually(func(g Gomega) {
			svc, err := cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(svc.Spec).To(Equal(orig.Spec))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "Service restored %s after SIGKILL\n", time.Since(killed).Round(time.Millisecond))
		Eventually(withHeader("alice")).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal("ok"))
		Eventually(func(g Gomega) {
			expectNoTrafficAgent(g, ctx, cs, ns)
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
	}, SpecTimeout(10*time.Minute))

	It("does nothing on a second up: same node containers, same commits", func(ctx SpecContext) {
		started := func() []string {
			return dockerLines(ctx, "ps", "--filter", "label=io.x-k8s.kind.cluster", "--format", "{{.Names}} {{.CreatedAt}}")
		}
		hubCfg, err := wb.RESTConfig("hub")
		Expect(err).NotTo(HaveOccurred())
		hub := dynamic.NewForConfigOrDie(hubCfg)
		_, _, rev := appStatus(ctx, hub, "spoke-1", fleet.SampleApp)
		before := started()
		res := wb.Run(ctx, "up")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(started()).To(Equal(before), "up again must reattach, not recreate")
		_, _, after := appStatus(ctx, hub, "spoke-1", fleet.SampleApp)
		Expect(after).To(Equal(rev), "up again must not re-seed the sample repository (the scale commit stays)")
	}, SpecTimeout(10*time.Minute))

	It("goes down and leaves no container, volume or context behind", func(ctx SpecContext) {
		lib, err := cluster.New(cluster.Options{StateDir: wb.StateDir, CacheDir: wb.CacheDir, Kubeconfig: wb.Kubeconfig})
		Expect(err).NotTo(HaveOccurred())
		clusters, err := lib.Clusters()
		Expect(err).NotTo(HaveOccurred())
		prefix := strings.TrimSuffix(hostOfURL(clusters[0].InternalEndpoint), "hub-control-plane")
		Expect(prefix).To(MatchRegexp(`^tether-[0-9a-f]{6}-$`))
		res := wb.Run(ctx, "down")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		kc, err := clientcmd.LoadFromFile(wb.Kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		Expect(kc.Contexts).NotTo(HaveKey("tether-hub"))
		Expect(wb.Run(ctx, "status").Stdout).To(ContainSubstring("No workbench"))
		for _, c := range dockerLines(ctx, "ps", "-a", "--format", "{{.Names}}") {
			Expect(c).NotTo(HavePrefix(prefix), "container left by down")
		}
		for _, v := range dockerLines(ctx, "volume", "ls", "-q") {
			Expect(volumesBefore).To(ContainElement(v), "volume %s appeared during the run and outlived down", v)
		}
	}, SpecTimeout(5*time.Minute))
})

// dockerLines runs the docker CLI and returns its output's non-empty lines.
func dockerLines(ctx context.Context, args ...string) []string {
	GinkgoHelper()
	out, err := exec.CommandContext(ctx, "docker", args...).Output()
	Expect(err).NotTo(HaveOccurred(), "docker %s", strings.Join(args, " "))
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// hostOfURL is the host of an https://host:port URL.
func hostOfURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
