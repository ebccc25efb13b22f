package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/scenarios/harness"
)

// echoServer is a local process standing in for a workload: it answers
// every request with its name, and /stream with a tick every 100 ms. It
// stops when the node that started it ends.
func echoServer(name string) string {
	GinkgoHelper()
	addr, stop, err := harness.EchoServer(name)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stop)
	return addr
}

var _ = Describe("intercept", Ordered, Label("embedded", "intercept"), func() {
	const ns = "shop"
	var (
		wb        *harness.Driver
		cs        *kubernetes.Clientset
		proxy     *svcproxy.Proxy
		tmp       string
		localAddr string
		origSvc   *corev1.Service
	)
	// One connection per request: the service proxy routes connections.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	getFrom := func(service string, port int32, path string, header ...string) (string, error) {
		addr, ok := proxy.Addr(ns, service, port)
		if !ok {
			return "", fmt.Errorf("no route for %s:%d yet", service, port)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	get := func(port int32, path string, header ...string) (string, error) {
		return getFrom("echo", port, path, header...)
	}
	body := func(header ...string) func() (string, error) {
		return func() (string, error) { return get(80, "/", header...) }
	}
	tetherArgs := func(args ...string) []string {
		return append([]string{"--state-dir", wb.StateDir, "--cache-dir", wb.CacheDir, "--kubeconfig", wb.Kubeconfig}, args...)
	}
	startOn := func(name, service string, port int, to string, extra ...string) *harness.Process {
		GinkgoHelper()
		args := tetherArgs(append([]string{"intercept", "start", "hub/" + ns + "/" + service, "--port", fmt.Sprint(port), "--to", to, "-v"}, extra...)...)
		p, err := harness.Start(name, tetherBin, filepath.Join(tmp, name+".log"), nil, args...)
		Expect(err).NotTo(HaveOccurred())
		Eventually(p.Output).WithTimeout(40*time.Second).Should(ContainSubstring("press Ctrl-C"), func() string { return p.Output() })
		DeferCleanup(p.Stop)
		return p
	}
	startInterceptTo := func(name, to string, extra ...string) *harness.Process {
		GinkgoHelper()
		return startOn(name, "echo", 80, to, extra...)
	}
	startIntercept := func(name string, extra ...string) *harness.Process {
		GinkgoHelper()
		return startInterceptTo(name, localAddr, extra...)
	}
	// serviceAsItWas: the spec, labels and annotations are exactly the
	// original.
	serviceAsItWas := func(g Gomega) {
		s, err := cs.CoreV1().Services(ns).Get(context.Background(), "echo", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.Spec.Selector).To(Equal(origSvc.Spec.Selector))
		g.Expect(s.Spec).To(Equal(origSvc.Spec))
		g.Expect(s.Annotations).To(Equal(origSvc.Annotations))
		g.Expect(s.Labels).To(Equal(origSvc.Labels))
	}
	nothingLeft := func(g Gomega) {
		ctx := context.Background()
		serviceAsItWas(g)
		expectNoTrafficAgent(g, ctx, cs, "")
	}
	// listRow returns the `intercept list` row of intercept name.
	listRow := func(name string) func() (string, error) {
		return func() (string, error) {
			res := wb.Run(context.Background(), "intercept", "list")
			if res.ExitCode != 0 {
				return "", fmt.Errorf("intercept list: %s", res.Stderr)
			}
			for _, l := range strings.Split(res.Stdout, "\n") {
				if f := strings.Fields(l); len(f) > 0 && f[0] == name {
					return l, nil
				}
			}
			return "", nil
		}
	}
	agentPods := func() ([]corev1.Pod, error) {
		pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: record.ComponentSelector})
		if err != nil {
			return nil, err
		}
		return pods.Items, nil
	}
	makeWorkload := func(ctx context.Context, name string, labels map[string]string, addr string) {
		GinkgoHelper()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: map[string]string{svcproxy.AnnotationLocalAddress: addr}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "example.com/echo:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "GREETING", Value: "hello from " + name}},
			}}},
		}
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	makeService := func(ctx context.Context, name string, selector map[string]string) *corev1.Service {
		GinkgoHelper()
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{"example.com/owner": "shop-team"}},
			Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			}},
		}
		s, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		return s
	}

	BeforeAll(func(ctx SpecContext) {
		wb, _ = upWorkbench(ctx, "--provider", "embedded", "--spokes", "0")
		tmp = GinkgoT().TempDir()
		var err error
		cs, err = wb.Client("hub")
		Expect(err).NotTo(HaveOccurred())
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		origAddr := echoServer("original")
		localAddr = echoServer("local")
		backendAddr := echoServer("backend")
		makeWorkload(ctx, "echo-0", map[string]string{"app": "echo"}, origAddr)
		makeWorkload(ctx, "backend-0", map[string]string{"app": "backend"}, backendAddr)
		origSvc = makeService(ctx, "echo", map[string]string{"app": "echo"})
		makeService(ctx, "backend", map[string]string{"app": "backend"})

		proxy = svcproxy.New(svcproxy.Options{Client: cs, MappingFile: filepath.Join(tmp, "routes.json"), Logger: slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		pctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- proxy.Run(pctx) }()
		DeferCleanup(func() { cancel(); Eventually(done).Should(Receive(BeNil())) })
		Eventually(body()).WithTimeout(30 * time.Second).Should(Equal("original"))
	}, NodeTimeout(5*time.Minute))

	It("serves a Service on loopback and follows a selector change (the time it took is printed)", func(ctx SpecContext) {
		routes, err := svcproxy.ReadMapping(filepath.Join(tmp, "routes.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(routes).To(ContainElement(HaveField("Service", "echo")))

		s, err := cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		s.Spec.Selector = map[string]string{"app": "backend"}
		_, err = cs.CoreV1().Services(ns).Update(ctx, s, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		start := time.Now()
		Eventually(body()).WithTimeout(5 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal("backend"))
		took := time.Since(start)
		fmt.Fprintf(GinkgoWriter, "selector change re-routed new connections after %v\n", took)

		s, err = cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		s.Spec.Selector = origSvc.Spec.Selector
		_, err = cs.CoreV1().Services(ns).Update(ctx, s, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(body()).WithTimeout(5 * time.Second).Should(Equal("original"))
		origSvc, err = cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(time.Minute))

	It("refuses bad input clearly and leaves nothing behind", func(ctx SpecContext) {
		refused := func(res harness.Result, want string) {
			GinkgoHelper()
			Expect(res.ExitCode).NotTo(Equal(0), res.Stdout)
			Expect(res.Stderr).To(ContainSubstring(want))
		}
		refused(wb.Run(ctx, "intercept", "start", "hub/"+ns+"/nope", "--port", "80", "--to", localAddr), "service hub/shop/nope not found")
		refused(wb.Run(ctx, "intercept", "start", "hub/"+ns+"/echo", "--port", "81", "--to", localAddr), "has no port 81 (its ports: 80)")
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		dead := l.Addr().String()
		l.Close()
		refused(wb.Run(ctx, "intercept", "start", "hub/"+ns+"/echo", "--port", "80", "--to", dead), "nothing is listening at --to "+dead)
		refused(wb.Run(ctx, "intercept", "start", "hub/"+ns, "--port", "80", "--to", localAddr), "want <cluster>/<namespace>/<service>")
		refused(wb.Run(ctx, "intercept", "stop", "ghost"), `no intercept named "ghost"`)
		Consistently(nothingLeft).WithTimeout(time.Second).Should(Succeed())
	}, SpecTimeout(time.Minute))

	It("carries every connection of a global intercept to the local process, refuses a second one, and restores the Service on stop", func(ctx SpecContext) {
		p := startIntercept("global")
		Eventually(body()).WithTimeout(5 * time.Second).Should(Equal("local"))
		Consistently(body()).WithTimeout(time.Second).Should(Equal("local"))

		list := wb.Run(ctx, "intercept", "list")
		Expect(list.ExitCode).To(Equal(0), list.Stderr)
		Expect(list.Stdout).To(MatchRegexp(`echo-80\s+hub\s+shop/echo\s+80\s+every connection\s+alive`))

		res := wb.Run(ctx, "intercept", "start", "hub/"+ns+"/echo", "--port", "80", "--to", localAddr)
		Expect(res.ExitCode).NotTo(Equal(0))
		Expect(res.Stderr).To(ContainSubstring(`port 80 of service hub/shop/echo is already intercepted globally by "echo-80" (stop it first: tether intercept stop echo-80)`))
		res = wb.Run(ctx, "intercept", "start", "hub/"+ns+"/echo", "--port", "80", "--to", localAddr, "--header", "X-Dev=alice")
		Expect(res.ExitCode).NotTo(Equal(0))
		Expect(res.Stderr).To(ContainSubstring(`port 80 of service hub/shop/echo is intercepted globally by "echo-80", which takes every connection`))

		By("the agent's connection counter reaching list")
		for range 3 {
			Expect(body()()).To(Equal("local"))
		}
		Eventually(listRow("echo-80")).WithTimeout(10 * time.Second).Should(MatchRegexp(`alive\s+([3-9]|\d\d+)\s+-\s+\S+\s*$`))

		By("a long-lived streaming response through the intercept")
		addr, _ := proxy.Addr(ns, "echo", 80)
		resp, err := client.Get("http://" + addr + "/stream")
		Expect(err).NotTo(HaveOccurred())
		sc := bufio.NewScanner(resp.Body)
		var ticks []time.Time
		for sc.Scan() {
			Expect(sc.Text()).To(HavePrefix("local tick"))
			ticks = append(ticks, time.Now())
		}
		resp.Body.Close()
		Expect(ticks).To(HaveLen(30))
		Expect(ticks[29].Sub(ticks[0])).To(BeNumerically(">", 2*time.Second), "the response was buffered, not streamed")

		p.Stop()
		Expect(p.Output()).To(ContainSubstring("shop/echo is as it was"))
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
		Eventually(body()).WithTimeout(5 * time.Second).Should(Equal("original"))
	}, SpecTimeout(2*time.Minute))

	It("routes only requests with the personal headers to the local process", func(ctx SpecContext) {
		p := startIntercept("personal", "--header", "X-Dev=alice")
		Eventually(body("X-Dev", "alice")).WithTimeout(5 * time.Second).Should(Equal("local"))
		Expect(body()()).To(Equal("original"))
		Expect(body("X-Dev", "bob")()).To(Equal("original"))
		Expect(body("X-Dev", "alice")()).To(Equal("local"))

		res := wb.Run(ctx, "intercept", "start", "hub/"+ns+"/echo", "--port", "80", "--to", localAddr, "--header", "x-dev=alice")
		Expect(res.ExitCode).NotTo(Equal(0))
		Expect(res.Stderr).To(ContainSubstring("already intercepted with the same headers"))

		stop := wb.Run(ctx, "intercept", "stop", "echo-80")
		Expect(stop.ExitCode).To(Equal(0), stop.Stderr)
		Eventually(p.Exited).WithTimeout(10 * time.Second).Should(BeTrue())
		Expect(p.Output()).To(ContainSubstring("was stopped"))
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("lets the local process reach in-cluster Services by DNS name through the outbound proxy", func(ctx SpecContext) {
		p := startIntercept("outbound")
		m := regexp.MustCompile(`HTTP_PROXY=(\S+)`).FindStringSubmatch(p.Output())
		Expect(m).To(HaveLen(2))
		u, err := url.Parse(m[1])
		Expect(err).NotTo(HaveOccurred())
		viaProxy := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
		for _, host := range []string{"backend.shop.svc", "backend.shop.svc.cluster.local", "backend.shop"} {
			resp, err := viaProxy.Get("http://" + host + "/")
			Expect(err).NotTo(HaveOccurred())
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			Expect(string(b)).To(Equal("backend"), host)
		}
		By("CONNECT, as HTTPS clients use it")
		c, err := net.Dial("tcp", u.Host)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		fmt.Fprintf(c, "CONNECT backend.shop.svc:80 HTTP/1.1\r\nHost: backend.shop.svc:80\r\n\r\n")
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		Expect(err).NotTo(HaveOccurred())
		Expect(line).To(ContainSubstring("200"))
		for l, _ := br.ReadString('\n'); strings.TrimSpace(l) != ""; l, _ = br.ReadString('\n') {
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n")
		rest, _ := io.ReadAll(br)
		Expect(string(rest)).To(HaveSuffix("backend"))

		resp, err := viaProxy.Get("http://missing.shop.svc/")
		if err == nil {
			Expect(resp.StatusCode).To(BeNumerically(">=", 500))
			resp.Body.Close()
		}
		p.Stop()
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("fails open within 15 s when the workbench is killed with SIGKILL", func(ctx SpecContext) {
		p := startIntercept("killed")
		Eventually(body()).WithTimeout(5 * time.Second).Should(Equal("local"))
		p.Kill()
		killed := time.Now()
		Eventually(serviceAsItWas).WithTimeout(15 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "service restored %v after SIGKILL of the workbench\n", time.Since(killed))
		Eventually(body()).WithTimeout(3 * time.Second).Should(Equal("original"))
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("runs a command with the workload's environment and the outbound proxy, ending with it", func(ctx SpecContext) {
		out := wb.Run(ctx, "intercept", "run", "hub/"+ns+"/echo", "--port", "80", "--to", localAddr, "--",
			"sh", "-c", `echo "greeting=$GREETING"; echo "proxy=$HTTP_PROXY"`)
		Expect(out.ExitCode).To(Equal(0), out.Stderr)
		Expect(out.Stdout).To(ContainSubstring("greeting=hello from echo-0"))
		Expect(out.Stdout).To(MatchRegexp(`proxy=http://127\.0\.0\.1:\d+`))
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
	}, SpecTimeout(time.Minute))

	It("uninstall removes a running intercept and its leftovers", func(ctx SpecContext) {
		p := startIntercept("uninstalled")
		Eventually(body()).WithTimeout(5 * time.Second).Should(Equal("local"))
		res := wb.Run(ctx, "intercept", "uninstall")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Eventually(p.Exited).WithTimeout(10 * time.Second).Should(BeTrue())
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
		Eventually(body()).WithTimeout(3 * time.Second).Should(Equal("original"))
	}, SpecTimeout(time.Minute))
	It("shares one Service between two personal intercepts of separate workbenches, and the last stop restores it exactly", func(ctx SpecContext) {
		aliceAddr := echoServer("alice")
		bobAddr := echoServer("bob")
		alice := startInterceptTo("shared-alice", aliceAddr, "--header", "X-Dev=alice")
		Expect(alice.Output()).To(ContainSubstring("intercept echo-80:"))
		bob := startInterceptTo("shared-bob", bobAddr, "--header", "X-Dev=bob")
		Expect(bob.Output()).To(ContainSubstring("intercept echo-80-2:"))

		Eventually(body("X-Dev", "alice")).WithTimeout(5 * time.Second).Should(Equal("alice"))
		Eventually(body("X-Dev", "bob")).WithTimeout(5 * time.Second).Should(Equal("bob"))
		Expect(body()()).To(Equal("original"))
		Expect(body("X-Dev", "carol")()).To(Equal("original"))
		Expect(agentPods()).To(HaveLen(1), "one traffic-agent serves every intercept of the Service")

		By("list showing both, with the requests each matched")
		for range 4 {
			Expect(body("X-Dev", "alice")()).To(Equal("alice"))
		}
		Eventually(listRow("echo-80")).WithTimeout(10 * time.Second).Should(MatchRegexp(`shop/echo\s+80\s+HTTP requests with X-Dev=alice\s+alive\s+[1-9]\d*\s+([5-9]|\d\d+)\s+\S+\s*$`))
		Eventually(listRow("echo-80-2")).WithTimeout(10 * time.Second).Should(MatchRegexp(`shop/echo\s+80\s+HTTP requests with X-Dev=bob\s+alive\s+[1-9]\d*\s+[1-9]\d*\s+\S+\s*$`))

		By("refusing what would take another intercept's requests")
		res := wb.Run(ctx, "intercept", "start", "hub/"+ns+"/echo", "--port", "80", "--to", localAddr, "--header", "x-dev=bob")
		Expect(res.ExitCode).NotTo(Equal(0))
		Expect(res.Stderr).To(ContainSubstring(`port 80 of service hub/shop/echo is already intercepted with the same headers (headers X-Dev=bob) by "echo-80-2" (stop it first: tether intercept stop echo-80-2)`))
		res = wb.Run(ctx, "intercept", "start", "hub/"+ns+"/echo", "--port", "80", "--to", localAddr)
		Expect(res.ExitCode).NotTo(Equal(0))
		Expect(res.Stderr).To(ContainSubstring("port 80 of service hub/shop/echo has personal intercepts (echo-80, echo-80-2); a global intercept would take their requests (stop them first: tether intercept stop echo-80; tether intercept stop echo-80-2)"))
		Expect(body("X-Dev", "bob")()).To(Equal("bob"), "a refused start disturbed a running intercept")

		By("stopping one: the other keeps working")
		stop := wb.Run(ctx, "intercept", "stop", "echo-80")
		Expect(stop.ExitCode).To(Equal(0), stop.Stderr)
		Eventually(alice.Exited).WithTimeout(10 * time.Second).Should(BeTrue())
		Expect(alice.Output()).To(ContainSubstring("was stopped"))
		Eventually(body("X-Dev", "alice")).WithTimeout(5 * time.Second).Should(Equal("original"))
		Consistently(body("X-Dev", "bob")).WithTimeout(2 * time.Second).Should(Equal("bob"))
		Expect(body()()).To(Equal("original"))
		s, err := cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Annotations).To(HaveKey(record.Annotation), "the Service was restored while an intercept remained")

		By("stopping the last: the Service exactly as it was, nothing left")
		bob.Stop()
		Expect(bob.Output()).To(ContainSubstring("shop/echo is as it was"))
		serviceAsItWas(Default)
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
		Eventually(body("X-Dev", "bob")).WithTimeout(5 * time.Second).Should(Equal("original"))
	}, SpecTimeout(3*time.Minute))

	It("drops only the routes of a SIGKILLed workbench within 15 s; the other intercept keeps working", func(ctx SpecContext) {
		aliceAddr := echoServer("alice")
		bobAddr := echoServer("bob")
		alice := startInterceptTo("kill-alice", aliceAddr, "--header", "X-Dev=alice")
		bob := startInterceptTo("kill-bob", bobAddr, "--header", "X-Dev=bob")
		Eventually(body("X-Dev", "alice")).WithTimeout(5 * time.Second).Should(Equal("alice"))
		Eventually(body("X-Dev", "bob")).WithTimeout(5 * time.Second).Should(Equal("bob"))

		alice.Kill()
		killed := time.Now()
		leaseGone := func() error {
			_, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), record.LeaseName("echo-80"), metav1.GetOptions{})
			if err == nil {
				return fmt.Errorf("lease of echo-80 still there")
			}
			return nil
		}
		Eventually(leaseGone).WithTimeout(15 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "routes of the killed workbench dropped %v after SIGKILL\n", time.Since(killed))
		Eventually(body("X-Dev", "alice")).WithTimeout(3 * time.Second).Should(Equal("original"))
		Expect(body("X-Dev", "bob")()).To(Equal("bob"))
		Consistently(body("X-Dev", "bob")).WithTimeout(3 * time.Second).Should(Equal("bob"))
		Expect(bob.Exited()).To(BeFalse())
		Expect(listRow("echo-80-2")()).To(ContainSubstring("alive"))

		bob.Stop()
		Expect(bob.Output()).To(ContainSubstring("shop/echo is as it was"))
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("keeps a long-lived TCP stream open through a global intercept", func(ctx SpecContext) {
		// A plain TCP echo process: the stream is opaque bytes both ways,
		// as a websocket or gRPC stream is once established.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(l.Close)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(c, c); c.Close() }()
			}
		}()
		p := startInterceptTo("stream", l.Addr().String())
		addr, ok := proxy.Addr(ns, "echo", 80)
		Expect(ok).To(BeTrue())
		// Wait for the takeover to reach the service proxy: the echo
		// process answers a line with the same line, the original pod
		// with an HTTP error.
		Eventually(func() (string, error) {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return "", err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "ping\n")
			return bufio.NewReader(c).ReadString('\n')
		}).WithTimeout(5 * time.Second).Should(Equal("ping\n"))

		c, err := net.Dial("tcp", addr)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		br := bufio.NewReader(c)
		start := time.Now()
		const n = 50
		for i := range n {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := fmt.Sprintf("message %d %s\n", i, strings.Repeat("x", i*100))
			_, err := io.WriteString(c, msg)
			Expect(err).NotTo(HaveOccurred())
			got, err := br.ReadString('\n')
			Expect(err).NotTo(HaveOccurred(), "message %d after %v", i, time.Since(start))
			Expect(got).To(Equal(msg))
			time.Sleep(100 * time.Millisecond)
		}
		Eventually(listRow("echo-80")).WithTimeout(10 * time.Second).Should(MatchRegexp(`every connection\s+alive\s+[1-9]\d*\s+-\s+\S+\s*$`))
		c.Close()
		p.Stop()
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))
	It("intercepts two ports of one Service from two workbenches through one agent", func(ctx SpecContext) {
		adminAddr := echoServer("original-admin")
		origHTTP := echoServer("original-multi")
		localAdmin := echoServer("local-admin")
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "multi-0", Namespace: ns, Labels: map[string]string{"app": "multi"}, Annotations: map[string]string{
				svcproxy.LocalAddressKey(8080): origHTTP, svcproxy.LocalAddressKey(9090): adminAddr,
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "example.com/multi:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9090}},
			}}},
		}
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		orig, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "multi", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "multi"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "admin", Port: 90, TargetPort: intstr.FromInt32(9090)},
			}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			_ = cs.CoreV1().Services(ns).Delete(ctx, "multi", metav1.DeleteOptions{})
			_ = cs.CoreV1().Pods(ns).Delete(ctx, "multi-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		})
		multi := func(port int32) func() (string, error) {
			return func() (string, error) { return getFrom("multi", port, "/") }
		}
		Eventually(multi(80)).WithTimeout(10 * time.Second).Should(Equal("original-multi"))
		Eventually(multi(90)).WithTimeout(10 * time.Second).Should(Equal("original-admin"))

		web := startOn("multi-web", "multi", 80, localAddr)
		admin := startOn("multi-admin", "multi", 90, localAdmin)
		Eventually(multi(80)).WithTimeout(5 * time.Second).Should(Equal("local"))
		Eventually(multi(90)).WithTimeout(5 * time.Second).Should(Equal("local-admin"))
		Expect(agentPods()).To(HaveLen(1), "one traffic-agent serves both ports")

		web.Stop()
		Expect(web.Output()).To(ContainSubstring("other intercepts of shop/multi keep running"), "the first stop restored the Service")
		Eventually(multi(80)).WithTimeout(5 * time.Second).Should(Equal("original-multi"))
		Consistently(multi(90)).WithTimeout(2 * time.Second).Should(Equal("local-admin"))

		admin.Stop()
		Expect(admin.Output()).To(ContainSubstring("shop/multi is as it was"))
		s, err := cs.CoreV1().Services(ns).Get(ctx, "multi", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Spec).To(Equal(orig.Spec))
		Expect(s.Annotations).To(Equal(orig.Annotations))
		Eventually(nothingLeft).WithTimeout(10 * time.Second).Should(Succeed())
		Eventually(multi(90)).WithTimeout(5 * time.Second).Should(Equal("original-admin"))
	}, SpecTimeout(2*time.Minute))
})
