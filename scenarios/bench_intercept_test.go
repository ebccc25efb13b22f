package scenarios

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/scenarios/harness"
)

// Sizes of one measurement: sequential requests for latency (on one
// kept-alive connection, and on a new connection each), and concurrent
// clients for throughput.
const (
	benchSeqRequests     = 2000
	benchNewConnRequests = 300
	benchClients         = 8
	benchRPSDuration     = 3 * time.Second
)

// benchEcho answers every request with name: the smallest workload, so
// the figures are the path's cost.
func benchEcho(b *testing.B, name string) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// pathFigures are one path's figures.
type pathFigures struct {
	name                   string
	p50, p99               time.Duration // kept-alive connection
	newConnP50, newConnP99 time.Duration // a new connection per request
	rps                    float64
}

// measure runs the same client over one path: it is the only thing that
// differs between the rows of the table.
func measure(b *testing.B, name, addr, want string, header http.Header) pathFigures {
	b.Helper()
	url := "http://" + addr + "/"
	get := func(c *http.Client) error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || string(body) != want {
			return fmt.Errorf("%s: status %d body %q, want %q", name, resp.StatusCode, body, want)
		}
		return nil
	}
	transport := func(keepAlive bool) *http.Transport {
		return &http.Transport{Proxy: nil, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: benchClients}
	}
	seq := func(c *http.Client, n int) (p50, p99 time.Duration) {
		d := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			if err := get(c); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		return d[len(d)/2], d[len(d)*99/100]
	}

	f := pathFigures{name: name}
	ka := &http.Client{Transport: transport(true), Timeout: 10 * time.Second}
	defer ka.CloseIdleConnections()
	for range 50 { // warm up: connections, goroutines, caches
		if err := get(ka); err != nil {
			b.Fatal(err)
		}
	}
	f.p50, f.p99 = seq(ka, benchSeqRequests)
	nc := &http.Client{Transport: transport(false), Timeout: 10 * time.Second}
	f.newConnP50, f.newConnP99 = seq(nc, benchNewConnRequests)

	var done atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	rc := &http.Client{Transport: transport(true), Timeout: 10 * time.Second}
	defer rc.CloseIdleConnections()
	start := time.Now()
	stop := start.Add(benchRPSDuration)
	for range benchClients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := get(rc); err != nil {
					failed.Store(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	f.rps = float64(done.Load()) / time.Since(start).Seconds()
	return f
}

// BenchmarkIntercept: on one embedded cluster, an HTTP echo Service
// measured with the same client over each path a request can take:
//
//   - direct: to the workload's own address;
//   - service: through the service proxy (`tether intercept
//     service-proxy`), the embedded cluster's kube-proxy;
//   - global: through the service proxy, a global intercept's
//     traffic-agent, the yamux session and the workbench, to a local echo;
//   - personal: the same with a personal intercept, for requests carrying
//     its header (goproxy routes each request);
//   - personal-miss: requests without the header, which the personal
//     intercept's agent sends on to the original pod.
//
// Latency is per request, sequential; requests/s is benchClients
// concurrent clients on kept-alive connections. Figures are printed, not
// asserted; only the requests' success is.
func BenchmarkIntercept(b *testing.B) {
	wb, lib := benchWorkbench(b, "--spokes", "0", "--clusters-only")
	cfg, err := lib.RESTConfig("hub")
	if err != nil {
		b.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	const ns = "bench"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	orig, local := benchEcho(b, "original"), benchEcho(b, "local")
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-0", Namespace: ns, Labels: map[string]string{"app": "echo"}, Annotations: map[string]string{svcproxy.AnnotationLocalAddress: orig}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: "example.com/echo:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "echo"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}

	tmp := b.TempDir()
	args := func(a ...string) []string {
		return append([]string{"--state-dir", wb.StateDir, "--cache-dir", wb.CacheDir, "--kubeconfig", wb.Kubeconfig}, a...)
	}
	mapping := filepath.Join(tmp, "routes.json")
	sp, err := harness.Start("service-proxy", wb.Bin, filepath.Join(tmp, "service-proxy.log"), nil, args("intercept", "service-proxy", "hub", "-n", ns, "--mapping-file", mapping)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sp.Stop)
	var svcAddr string
	waitFor(b, 30*time.Second, "the service proxy's route to echo:80", func() bool {
		routes, err := svcproxy.ReadMapping(mapping)
		for _, r := range routes {
			if err == nil && r.Namespace == ns && r.Service == "echo" && r.Port == 80 {
				svcAddr = r.Address
			}
		}
		return svcAddr != "" && probeGet(svcAddr, nil) == "original"
	})
	intercept := func(name string, extra ...string) *harness.Process {
		b.Helper()
		p, err := harness.Start(name, wb.Bin, filepath.Join(tmp, name+".log"), nil,
			args(append([]string{"intercept", "start", "hub/" + ns + "/echo", "--port", "80", "--to", local}, extra...)...)...)
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, 60*time.Second, name+" intercept to start", func() bool {
			if p.Exited() {
				b.Fatalf("%s intercept exited: %s", name, p.Output())
			}
			return strings.Contains(p.Output(), "press Ctrl-C")
		})
		return p
	}
	dev := http.Header{"X-Dev": {"bench"}}

	var rows []pathFigures
	for b.Loop() {
		rows = rows[:0]
		rows = append(rows, measure(b, "direct", orig, "original", nil))
		rows = append(rows, measure(b, "service", svcAddr, "original", nil))

		g := intercept("global")
		waitFor(b, 10*time.Second, "the global intercept to route", func() bool { return probeGet(svcAddr, nil) == "local" })
		rows = append(rows, measure(b, "global", svcAddr, "local", nil))
		g.Stop()
		waitFor(b, 15*time.Second, "the service back after the global intercept", func() bool { return probeGet(svcAddr, nil) == "original" })

		p := intercept("personal", "--header", "X-Dev=bench")
		waitFor(b, 10*time.Second, "the personal intercept to route", func() bool { return probeGet(svcAddr, dev) == "local" })
		rows = append(rows, measure(b, "personal", svcAddr, "local", dev))
		rows = append(rows, measure(b, "personal-miss", svcAddr, "original", nil))
		p.Stop()
		waitFor(b, 15*time.Second, "the service back after the personal intercept", func() bool { return probeGet(svcAddr, nil) == "original" })
	}

	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "path\tp50 µs\tp99 µs\tnew-conn p50 µs\tnew-conn p99 µs\treq/s (%d clients)\tadded p50 µs\t\n", benchClients)
	for _, r := range rows {
		b.ReportMetric(us(r.p50), r.name+"-p50-µs")
		b.ReportMetric(us(r.p99), r.name+"-p99-µs")
		b.ReportMetric(us(r.newConnP50), r.name+"-newconn-p50-µs")
		b.ReportMetric(us(r.newConnP99), r.name+"-newconn-p99-µs")
		b.ReportMetric(r.rps, r.name+"-req/s")
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%+.0f\t\n", r.name, us(r.p50), us(r.p99), us(r.newConnP50), us(r.newConnP99), r.rps, us(r.p50)-us(rows[0].p50))
	}
	tw.Flush()
}

// probeGet is one request on a fresh connection; "" on any failure.
func probeGet(addr string, header http.Header) string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
