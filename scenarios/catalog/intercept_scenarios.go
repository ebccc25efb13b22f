package catalog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/scenarios/harness"
)

// Contracts of the embedded intercept machinery these scenarios rely on,
// spelled out here rather than imported: the scenarios drive `tether
// intercept` as a user does, and these strings are what a user sees.
const (
	// annotationLocalAddress tells the embedded service proxy where a
	// kwok pod's "container" really listens.
	annotationLocalAddress = "tether.dev/local-address"
	// interceptAgentSelector selects the traffic-agent pods and leases an
	// intercept creates.
	interceptAgentSelector = "app.kubernetes.io/component=traffic-agent,app.kubernetes.io/managed-by=tether"
)

// shop is the little application intercept scenarios work on, in a hub
// namespace of their own: Service echo (answering "original") and Service
// backend (answering "backend"), and a local process answering "local".
// On the embedded provider the Services' pods are kwok pods whose
// "containers" are echo servers on loopback, served by a `tether intercept
// service-proxy` the scenario runs; on kind they are real pods of tether's
// image (`tether sample serve`), reached the way in-cluster clients reach
// them: the API server's service proxy picks a ready endpoint of the
// Service, which is what an intercept changes.
type shop struct {
	e       *Env
	ns      string
	cs      *kubernetes.Clientset
	mapping string
	local   string
	orig    *corev1.Service
	client  *http.Client
}

func newShop(e *Env, ns string) *shop {
	return &shop{e: e, ns: ns, mapping: filepath.Join(e.Dir(), "routes.json"),
		// One connection per request: the service proxy routes connections.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}}
}

func (s *shop) setUpStep() Step {
	how := "served on loopback by tether intercept service-proxy"
	if s.e.Kind() {
		how = "pods of tether's image"
	}
	return Step{Name: "Services echo and backend in hub namespace " + s.ns + ", " + how, Run: s.setUp}
}

func (s *shop) setUp(ctx context.Context) error {
	cs, err := s.e.Kube(Hub)
	if err != nil {
		return err
	}
	s.cs = cs
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create hub namespace %s: %w (left over from an earlier run? `kubectl --context tether-hub delete ns %s`)", s.ns, err, s.ns)
	}
	s.e.Cleanup("delete hub namespace "+s.ns, func(ctx context.Context) error {
		err := cs.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if s.local, err = s.echo("local"); err != nil {
		return err
	}
	if s.e.Kind() {
		return s.setUpKind(ctx)
	}
	origAddr, err := s.echo("original")
	if err != nil {
		return err
	}
	backendAddr, err := s.echo("backend")
	if err != nil {
		return err
	}
	for name, addr := range map[string]string{"echo": origAddr, "backend": backendAddr} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Namespace: s.ns, Labels: map[string]string{"app": name}, Annotations: map[string]string{annotationLocalAddress: addr}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "example.com/echo:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "GREETING", Value: "hello from " + name}},
			}}},
		}
		if err := s.createPodAndService(ctx, name, pod); err != nil {
			return err
		}
	}
	p, _, err := startProcess(s.e, "service-proxy", s.e.Workbench().Bin,
		s.e.TetherArgs("intercept", "service-proxy", Hub, "--mapping-file", s.mapping, "-v")...)
	if err != nil {
		return err
	}
	stopAtCleanup(s.e, "stop tether intercept service-proxy", p)
	return eventually(ctx, 30*time.Second, "echo answers through the service proxy", s.answers("original"))
}

// setUpKind runs echo and backend as pods of tether's image: `tether up`
// loaded it into the hub, and the principal's Deployment names it.
func (s *shop) setUpKind(ctx context.Context) error {
	d, err := s.cs.AppsV1().Deployments(deploy.DefaultNamespace).Get(ctx, deploy.PrincipalName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read tether's image from Deployment %s/%s on the hub: %w", deploy.DefaultNamespace, deploy.PrincipalName, err)
	}
	image := d.Spec.Template.Spec.Containers[0].Image
	for _, name := range []string{"echo", "backend"} {
		who := name
		if name == "echo" {
			who = "original"
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Namespace: s.ns, Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Args:  []string{"sample", "serve", "--listen", ":8080", "--cluster", who},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					PeriodSeconds: 1},
			}}},
		}
		// Admission refuses pods until the new namespace's default
		// ServiceAccount exists, which takes the controller a moment.
		if err := eventually(ctx, 30*time.Second, "pod "+s.ns+"/"+pod.Name+" admitted", func(ctx context.Context) error {
			return s.createPodAndService(ctx, name, pod)
		}); err != nil {
			return err
		}
	}
	return eventually(ctx, 2*time.Minute, "echo answers through the API server's service proxy", s.answers("original"))
}

// createPodAndService creates pod and Service name selecting it; the
// Service keeps its original form in s.orig for echo.
func (s *shop) createPodAndService(ctx context.Context, name string, pod *corev1.Pod) error {
	if _, err := s.cs.CoreV1().Pods(s.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create pod %s/%s on the hub: %w", s.ns, pod.Name, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Annotations: map[string]string{"example.com/owner": "shop-team"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		}},
	}
	created, err := s.cs.CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create Service %s/%s on the hub: %w", s.ns, name, err)
	}
	if name == "echo" {
		s.orig = created
	}
	return nil
}

// wait is d on the embedded provider and long on kind, where pods are
// scheduled, pulled from the node's store and terminated gracefully.
func (s *shop) wait(d, long time.Duration) time.Duration {
	if s.e.Kind() {
		return long
	}
	return d
}

// echo serves name on loopback: every request gets name back, /stream a
// tick every 100 ms.
func (s *shop) echo(name string) (string, error) {
	addr, stop, err := harness.EchoServer(name)
	if err != nil {
		return "", err
	}
	s.e.Cleanup("stop the "+name+" echo server", func(context.Context) error { stop(); return nil })
	return addr, nil
}

// addr is where the service proxy serves Service svc's port, from its
// mapping file.
func (s *shop) addr(svc string, port int32) (string, error) {
	b, err := os.ReadFile(s.mapping)
	if err != nil {
		return "", fmt.Errorf("the service proxy's mapping file: %w (log %s)", err, filepath.Join(s.e.Dir(), "service-proxy.log"))
	}
	var routes []struct {
		Namespace, Service, Address string
		Port                        int32
	}
	if err := json.Unmarshal(b, &routes); err != nil {
		return "", fmt.Errorf("mapping file %s: %w", s.mapping, err)
	}
	for _, r := range routes {
		if r.Namespace == s.ns && r.Service == svc && r.Port == port {
			return r.Address, nil
		}
	}
	return "", fmt.Errorf("mapping file %s has no route for %s/%s:%d yet", s.mapping, s.ns, svc, port)
}

// request sends GET path to Service echo port 80, with an optional
// header, and returns the response body unread.
func (s *shop) request(ctx context.Context, path string, header ...string) (io.ReadCloser, error) {
	if s.e.Kind() {
		req := s.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces", s.ns, "services", "echo:80", "proxy", strings.TrimPrefix(path, "/"))
		if len(header) == 2 {
			req = req.SetHeader(header[0], header[1])
		}
		return req.Stream(ctx)
	}
	addr, err := s.addr("echo", 80)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET http://%s%s: %s", addr, path, resp.Status)
	}
	return resp.Body, nil
}

// get requests path from Service echo port 80 and says who answered.
func (s *shop) get(ctx context.Context, path string, header ...string) (string, error) {
	body, err := s.request(ctx, path, header...)
	if err != nil {
		return "", err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return who(string(b)), err
}

// who names the server of a body: an echo server answers its name, a pod
// of tether's sample "hello from tether's sample on cluster <name> (...)".
func who(body string) string {
	const sampleAnswer = "hello from tether's sample on cluster "
	if rest, ok := strings.CutPrefix(body, sampleAnswer); ok {
		name, _, _ := strings.Cut(rest, " ")
		return strings.TrimSpace(name)
	}
	return strings.TrimSpace(body)
}

// answers checks who answers Service echo.
func (s *shop) answers(want string, header ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		got, err := s.get(ctx, "/", header...)
		if err != nil {
			return err
		}
		if got != want {
			h := ""
			if len(header) == 2 {
				h = fmt.Sprintf(" with %s: %s", header[0], header[1])
			}
			return fmt.Errorf("Service %s/echo answered %q%s, want %q", s.ns, got, h, want)
		}
		return nil
	}
}

// start runs `tether intercept start` for Service echo port 80 to the
// local process, waiting until it is ready.
func (s *shop) start(ctx context.Context, name string, extra ...string) (*harness.Process, error) {
	return startIntercept(ctx, s.e, name, 40*time.Second, append([]string{Hub + "/" + s.ns + "/echo", "--port", "80", "--to", s.local}, extra...)...)
}

// asItWas checks Service echo's selector, annotations and ports are the
// original ones.
func (s *shop) asItWas(ctx context.Context) error {
	svc, err := s.cs.CoreV1().Services(s.ns).Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(svc.Spec.Selector, s.orig.Spec.Selector) || !reflect.DeepEqual(svc.Annotations, s.orig.Annotations) || !reflect.DeepEqual(svc.Spec.Ports, s.orig.Spec.Ports) {
		return fmt.Errorf("Service %s/echo on the hub is not as it was: selector %v annotations %v (was %v, %v); `kubectl --context tether-hub -n %s get svc echo -o yaml`",
			s.ns, svc.Spec.Selector, svc.Annotations, s.orig.Spec.Selector, s.orig.Annotations, s.ns)
	}
	return nil
}

// nothingLeft checks the Service is restored and no traffic-agent pod or
// lease remains on the hub.
func (s *shop) nothingLeft(ctx context.Context) error {
	if err := s.asItWas(ctx); err != nil {
		return err
	}
	pods, err := s.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: interceptAgentSelector})
	if err != nil {
		return err
	}
	if len(pods.Items) > 0 {
		return fmt.Errorf("traffic-agent pod %s/%s is still on the hub (`tether intercept uninstall` removes leftovers)", pods.Items[0].Namespace, pods.Items[0].Name)
	}
	leases, err := s.cs.CoordinationV1().Leases("").List(ctx, metav1.ListOptions{LabelSelector: interceptAgentSelector})
	if err != nil {
		return err
	}
	if len(leases.Items) > 0 {
		return fmt.Errorf("intercept lease %s/%s is still on the hub", leases.Items[0].Namespace, leases.Items[0].Name)
	}
	return nil
}

func (s *shop) cleanAfterStop(ctx context.Context) error {
	if err := eventually(ctx, s.wait(10*time.Second, time.Minute), "Service restored, no traffic-agent left", s.nothingLeft); err != nil {
		return err
	}
	return eventually(ctx, s.wait(5*time.Second, 20*time.Second), "echo answered by the original", s.answers("original"))
}

func interceptGlobal() Scenario {
	return Scenario{
		Name:        "intercept-global",
		Description: "a global intercept carries every connection (streams unbuffered) to a local process, refuses a second one, and restores the Service on stop",
		Labels:      []string{LabelIntercept},
		Timeout:     4 * time.Minute,
		Steps: func(e *Env) []Step {
			s := newShop(e, "scn-intercept-global")
			var p *harness.Process
			return []Step{
				s.setUpStep(),
				{Name: "tether intercept start: every connection reaches the local process", Run: func(ctx context.Context) (err error) {
					if p, err = s.start(ctx, "intercept-global"); err != nil {
						return err
					}
					if err := eventually(ctx, 5*time.Second, "the local process answers", s.answers("local")); err != nil {
						return err
					}
					return holds(ctx, time.Second, "the local process keeps answering", s.answers("local"))
				}},
				{Name: "tether intercept list shows it; a second global intercept is refused", Run: func(ctx context.Context) error {
					list := e.Tether(ctx, "intercept", "list")
					row := regexp.MustCompile(`echo-80\s+hub\s+` + s.ns + `/echo\s+80\s`)
					if list.ExitCode != 0 || !row.MatchString(list.Stdout) {
						return fmt.Errorf("tether intercept list (exit %d) shows no row matching %q:\n%s%s", list.ExitCode, row, list.Stdout, list.Stderr)
					}
					res := e.Tether(ctx, "intercept", "start", Hub+"/"+s.ns+"/echo", "--port", "80", "--to", s.local)
					if res.ExitCode == 0 || !strings.Contains(res.Stderr, "already intercepted") {
						return fmt.Errorf("a second global intercept of %s/echo:80: exit %d, stderr %q; want a refusal saying it is already intercepted", s.ns, res.ExitCode, lastLines(res.Stderr, 3))
					}
					return nil
				}},
				{Name: "a streaming response arrives tick by tick, not buffered", Run: func(ctx context.Context) error {
					body, err := s.request(ctx, "/stream")
					if err != nil {
						return err
					}
					defer body.Close()
					sc := bufio.NewScanner(body)
					var ticks []time.Time
					for sc.Scan() {
						if !strings.HasPrefix(sc.Text(), "local tick") {
							return fmt.Errorf("stream line %q did not come from the local process", sc.Text())
						}
						ticks = append(ticks, time.Now())
					}
					if len(ticks) != 30 {
						return fmt.Errorf("got %d of 30 stream lines through the intercept (log %s)", len(ticks), p.Log)
					}
					if spread := ticks[29].Sub(ticks[0]); spread < 2*time.Second {
						return fmt.Errorf("30 ticks 100 ms apart arrived within %s: the response was buffered, not streamed", spread)
					}
					return nil
				}},
				{Name: "stop it (Ctrl-C): the Service is as it was and the original answers", Run: func(ctx context.Context) error {
					p.Stop()
					if !strings.Contains(p.Output(), "is as it was") {
						return fmt.Errorf("tether intercept start did not report the Service restored; its output (%s):\n%s", p.Log, lastLines(p.Output(), 5))
					}
					return s.cleanAfterStop(ctx)
				}},
			}
		},
	}
}

func interceptPersonal() Scenario {
	return Scenario{
		Name:        "intercept-personal",
		Description: "a personal intercept takes only requests with its header; tether intercept stop ends it and leaves nothing behind",
		Labels:      []string{LabelIntercept},
		Timeout:     4 * time.Minute,
		Steps: func(e *Env) []Step {
			s := newShop(e, "scn-intercept-personal")
			var p *harness.Process
			return []Step{
				s.setUpStep(),
				{Name: "tether intercept start --header X-Dev=alice", Run: func(ctx context.Context) (err error) {
					p, err = s.start(ctx, "intercept-personal", "--header", "X-Dev=alice")
					return err
				}},
				{Name: "alice's requests reach the local process, everyone else's the original", Run: func(ctx context.Context) error {
					if err := eventually(ctx, 5*time.Second, "alice routed locally", s.answers("local", "X-Dev", "alice")); err != nil {
						return err
					}
					for _, check := range []func(context.Context) error{s.answers("original"), s.answers("original", "X-Dev", "bob"), s.answers("local", "X-Dev", "alice")} {
						if err := check(ctx); err != nil {
							return err
						}
					}
					res := e.Tether(ctx, "intercept", "start", Hub+"/"+s.ns+"/echo", "--port", "80", "--to", s.local, "--header", "x-dev=alice")
					if res.ExitCode == 0 || !strings.Contains(res.Stderr, "already intercepted") {
						return fmt.Errorf("a second intercept with the same header: exit %d, stderr %q; want a refusal", res.ExitCode, lastLines(res.Stderr, 3))
					}
					return nil
				}},
				{Name: "tether intercept stop ends it; nothing is left", Run: func(ctx context.Context) error {
					res := e.Tether(ctx, "intercept", "stop", "echo-80")
					if res.ExitCode != 0 {
						return fmt.Errorf("tether intercept stop echo-80: exit %d: %s", res.ExitCode, lastLines(res.Stderr, 3))
					}
					if err := eventually(ctx, 10*time.Second, "the intercept process ended", func(context.Context) error {
						if p.Exited() {
							return nil
						}
						return fmt.Errorf("tether intercept start still runs (log %s)", p.Log)
					}); err != nil {
						return err
					}
					return s.cleanAfterStop(ctx)
				}},
			}
		},
	}
}

func interceptOutbound() Scenario {
	return Scenario{
		Name:        "intercept-outbound",
		Description: "the local process reaches in-cluster Services by DNS name (HTTP and CONNECT) through the intercept's outbound proxy",
		Labels:      []string{LabelIntercept},
		Timeout:     4 * time.Minute,
		Steps: func(e *Env) []Step {
			s := newShop(e, "scn-intercept-outbound")
			var p *harness.Process
			var proxyURL *url.URL
			return []Step{
				s.setUpStep(),
				{Name: "tether intercept start prints HTTP_PROXY", Run: func(ctx context.Context) (err error) {
					if p, err = s.start(ctx, "intercept-outbound"); err != nil {
						return err
					}
					m := regexp.MustCompile(`HTTP_PROXY=(\S+)`).FindStringSubmatch(p.Output())
					if len(m) != 2 {
						return fmt.Errorf("tether intercept start printed no HTTP_PROXY=...: %s", lastLines(p.Output(), 5))
					}
					proxyURL, err = url.Parse(m[1])
					return err
				}},
				{Name: "GET backend by its DNS names through the proxy", Run: func(ctx context.Context) error {
					via := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
					for _, host := range []string{"backend." + s.ns + ".svc", "backend." + s.ns + ".svc.cluster.local", "backend." + s.ns} {
						resp, err := via.Get("http://" + host + "/")
						if err != nil {
							return fmt.Errorf("GET http://%s/ through %s: %w (log %s)", host, proxyURL, err, p.Log)
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if who(string(b)) != "backend" {
							return fmt.Errorf("GET http://%s/ through %s answered %q, want \"backend\"", host, proxyURL, b)
						}
					}
					return nil
				}},
				{Name: "CONNECT backend, as HTTPS clients do", Run: func(ctx context.Context) error {
					c, err := net.DialTimeout("tcp", proxyURL.Host, 5*time.Second)
					if err != nil {
						return err
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					host := "backend." + s.ns + ".svc:80"
					fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
					br := bufio.NewReader(c)
					line, err := br.ReadString('\n')
					if err != nil {
						return fmt.Errorf("CONNECT %s: %w", host, err)
					}
					if !strings.Contains(line, "200") {
						return fmt.Errorf("CONNECT %s answered %q, want 200 (log %s)", host, strings.TrimSpace(line), p.Log)
					}
					for l, _ := br.ReadString('\n'); strings.TrimSpace(l) != ""; l, _ = br.ReadString('\n') {
					}
					fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n")
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						return fmt.Errorf("GET through the CONNECT tunnel to %s: %w", host, err)
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					if who(string(b)) != "backend" {
						return fmt.Errorf("GET through the CONNECT tunnel answered %q, want one from backend", b)
					}
					return nil
				}},
				{Name: "stop it: nothing is left", Run: func(ctx context.Context) error {
					p.Stop()
					return s.cleanAfterStop(ctx)
				}},
			}
		},
	}
}

func interceptCrashCleanup() Scenario {
	return Scenario{
		Name:        "intercept-crash-cleanup",
		Description: "when tether intercept start is SIGKILLed, the Service fails open to the original within 15 s and nothing is left",
		Labels:      []string{LabelIntercept, LabelChaos},
		Timeout:     4 * time.Minute,
		Steps: func(e *Env) []Step {
			s := newShop(e, "scn-intercept-crash")
			var p *harness.Process
			return []Step{
				s.setUpStep(),
				{Name: "tether intercept start: the local process answers", Run: func(ctx context.Context) (err error) {
					if p, err = s.start(ctx, "intercept-crash"); err != nil {
						return err
					}
					return eventually(ctx, 5*time.Second, "the local process answers", s.answers("local"))
				}},
				{Name: "SIGKILL it: the Service is as it was within 15 s", Run: func(ctx context.Context) error {
					p.Kill()
					killed := time.Now()
					if err := eventually(ctx, 15*time.Second, "Service restored after SIGKILL", s.asItWas); err != nil {
						return err
					}
					e.Logf("Service restored %s after SIGKILL", time.Since(killed).Round(time.Millisecond))
					return nil
				}},
				{Name: "the original answers and nothing is left", Run: func(ctx context.Context) error {
					if err := eventually(ctx, s.wait(3*time.Second, 20*time.Second), "echo answered by the original", s.answers("original")); err != nil {
						return err
					}
					return eventually(ctx, s.wait(10*time.Second, time.Minute), "no traffic-agent left", s.nothingLeft)
				}},
			}
		},
	}
}
