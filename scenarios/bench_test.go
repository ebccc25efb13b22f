package scenarios

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/gitops/agent"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/engine"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/gitserver"
	"github.com/tether-dev/tether/gitops/principal"
	"github.com/tether-dev/tether/gitops/protocol"
	"github.com/tether-dev/tether/gitops/sample"
	"github.com/tether-dev/tether/scenarios/harness"
)

// Benchmarks print figures (go tool task bench); none is asserted.

// benchWorkbench builds tether and brings up an embedded workbench.
func benchWorkbench(b *testing.B, args ...string) (*harness.Driver, *cluster.Workbench) {
	b.Helper()
	ctx := context.Background()
	root, err := harness.ModuleRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin, err := harness.BuildTether(ctx, root, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cache, err := cluster.DefaultCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(bin, "prepare", "--cache-dir", cache).CombinedOutput(); err != nil {
		b.Fatalf("prepare: %v\n%s", err, out)
	}
	dir := b.TempDir()
	wb := &harness.Driver{Bin: bin, StateDir: dir + "/state", CacheDir: cache, Kubeconfig: dir + "/kubeconfig"}
	res := wb.Run(ctx, append([]string{"up", "--provider", "embedded"}, args...)...)
	if res.ExitCode != 0 {
		b.Fatalf("up: %s", res.Stderr)
	}
	b.Cleanup(func() { wb.Run(context.Background(), "down") })
	lib, err := cluster.New(cluster.Options{StateDir: wb.StateDir, CacheDir: cache, Kubeconfig: wb.Kubeconfig})
	if err != nil {
		b.Fatal(err)
	}
	return wb, lib
}

func appStatus(ctx context.Context, dyn dynamic.Interface, ns, name string) (sync, health, rev string) {
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", "", ""
	}
	sync, _, _ = unstructured.NestedString(u.Object, "status", "sync", "status")
	health, _, _ = unstructured.NestedString(u.Object, "status", "health", "status")
	rev, _, _ = unstructured.NestedString(u.Object, "status", "sync", "revision")
	return
}

func waitFor(b *testing.B, d time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createApp(b *testing.B, dyn dynamic.Interface, ns, name, url, path, dest string) {
	b.Helper()
	app := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: url, TargetRevision: "main", Path: path},
			Destination: v1alpha1.Destination{Namespace: dest},
			SyncPolicy:  &v1alpha1.SyncPolicy{Automated: &v1alpha1.Automated{Prune: true, SelfHeal: true}, SyncOptions: []string{v1alpha1.SyncOptionCreateNamespace}}},
	}
	m, err := kruntime.DefaultUnstructuredConverter.ToUnstructured(app)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// engineOn runs a sync engine in-process on cfg, fed by an in-process Git
// server whose pushes refresh it (the push-driven trigger).
func engineOn(b *testing.B, cfg *rest.Config) (*engine.Engine, *harness.Repo, string) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := engine.InstallCRD(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Config: cfg, Namespace: cluster.SystemNamespace, CacheDir: b.TempDir(), PollInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }()
	var url string
	srv, err := gitserver.New(b.TempDir(), gitserver.Options{OnPush: func(gitserver.PushEvent) { eng.Refresh(url) }})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.CreateRepo("bench"); err != nil {
		b.Fatal(err)
	}
	addr, err := srv.ListenAndServe(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	url = gitserver.URL("http://"+addr.String(), "bench")
	repo, err := harness.CloneRepo(ctx, url, filepath.Join(b.TempDir(), "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); <-done; srv.Close() })
	return eng, repo, url
}

// BenchmarkPushToConverged: a commit pushed to the embedded Git server
// until the spoke's Deployment has the new replica count and the
// Application is Synced at that commit (push hook → refresh → sync).
func BenchmarkPushToConverged(b *testing.B) {
	_, lib := benchWorkbench(b, "--spokes", "0", "--clusters-only")
	cfg, err := lib.RESTConfig("hub")
	if err != nil {
		b.Fatal(err)
	}
	dyn, cs := dynamic.NewForConfigOrDie(cfg), kubernetes.NewForConfigOrDie(cfg)
	_, repo, url := engineOn(b, cfg)
	ctx := context.Background()
	if err := repo.Write("app/deployment.yaml", fmt.Sprintf(deploymentYAML, 1)); err != nil {
		b.Fatal(err)
	}
	if _, err := repo.CommitPush(ctx, "initial"); err != nil {
		b.Fatal(err)
	}
	createApp(b, dyn, cluster.SystemNamespace, "bench", url, "app", "bench")
	waitFor(b, time.Minute, "first sync", func() bool { s, _, _ := appStatus(ctx, dyn, cluster.SystemNamespace, "bench"); return s == "Synced" })
	replicas := 1
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		replicas = replicas%5 + 1
		if err := repo.Write("app/deployment.yaml", fmt.Sprintf(deploymentYAML, replicas)); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sha, err := repo.CommitPush(ctx, "scale")
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, time.Minute, "convergence", func() bool {
			d, err := cs.AppsV1().Deployments("bench").Get(ctx, "web", metav1.GetOptions{})
			s, _, rev := appStatus(ctx, dyn, cluster.SystemNamespace, "bench")
			return err == nil && int(*d.Spec.Replicas) == replicas && s == "Synced" && rev == sha
		})
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/push-to-converged")
}

// BenchmarkReconcile200 measures the first sync of an Application of 200
// resources, a no-change reconcile of it (refresh annotation until
// cleared), and the engine process's heap afterwards.
func BenchmarkReconcile200(b *testing.B) {
	_, lib := benchWorkbench(b, "--spokes", "0", "--clusters-only")
	cfg, err := lib.RESTConfig("hub")
	if err != nil {
		b.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	_, repo, url := engineOn(b, cfg)
	ctx := context.Background()
	for i := range 200 {
		if err := repo.Write(fmt.Sprintf("big/cm-%03d.yaml", i), configMapYAML(fmt.Sprintf("cm-%03d", i), strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := repo.CommitPush(ctx, "200 resources"); err != nil {
		b.Fatal(err)
	}
	var first, noop time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		name := fmt.Sprintf("big-%d", n)
		n++
		start := time.Now()
		createApp(b, dyn, cluster.SystemNamespace, name, url, "big", name)
		waitFor(b, 5*time.Minute, "200 resources synced", func() bool {
			s, h, _ := appStatus(ctx, dyn, cluster.SystemNamespace, name)
			return s == "Synced" && h == "Healthy"
		})
		first += time.Since(start)
		start = time.Now()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"now"}}}`, v1alpha1.AnnotationRefresh)
		if _, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFor(b, time.Minute, "no-change reconcile", func() bool {
			u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace).Get(ctx, name, metav1.GetOptions{})
			_, pending := u.GetAnnotations()[v1alpha1.AnnotationRefresh]
			return err == nil && !pending
		})
		noop += time.Since(start)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(first.Seconds()/float64(b.N), "s/sync-200")
	b.ReportMetric(float64(noop.Milliseconds())/float64(b.N), "ms/no-change-reconcile")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
}

// BenchmarkFleetCommitToSynced: `tether up` with N spokes (the complete
// system as child processes), then a commit to the sample repository until
// the hub shows every spoke Synced at it.
func BenchmarkFleetCommitToSynced(b *testing.B) {
	for _, n := range []int{2, 10} {
		b.Run(fmt.Sprintf("spokes=%d", n), func(b *testing.B) {
			_, lib := benchWorkbench(b, "--spokes", strconv.Itoa(n), "--wait", "10m")
			st, err := fleet.Load(lib)
			if err != nil || st == nil {
				b.Fatalf("fleet state: %v", err)
			}
			cfg, err := lib.RESTConfig("hub")
			if err != nil {
				b.Fatal(err)
			}
			dyn := dynamic.NewForConfigOrDie(cfg)
			ctx := context.Background()
			replicas := 1
			var total time.Duration
			b.ResetTimer()
			for b.Loop() {
				replicas = replicas%4 + 2
				start := time.Now()
				sha, err := sample.Commit(ctx, st.LocalGitURL, "scale", scaleOverlays(st.Spokes, replicas)...)
				if err != nil {
					b.Fatal(err)
				}
				waitFor(b, 5*time.Minute, "every spoke synced", func() bool {
					for _, s := range st.Spokes {
						sy, h, rev := appStatus(ctx, dyn, s, fleet.SampleApp)
						if sy != "Synced" || h != "Healthy" || rev != sha {
							return false
						}
					}
					return true
				})
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/commit-to-all-synced")
		})
	}
}

// scaleOverlays edits every spoke's overlay, so each spoke really changes.
func scaleOverlays(spokes []string, replicas int) []sample.Edit {
	out := []sample.Edit{sample.Scale(sample.PlainDeployment, replicas)}
	for _, s := range spokes {
		out = append(out, sample.ScaleOverlay(s, replicas))
	}
	return out
}

// The fleet and load of BenchmarkPrincipalScale.
const (
	scaleAgents = 100
	// scaleApps Applications per agent, each in the agent's own hub
	// namespace.
	scaleApps = 5
	// scaleSaturate is how long every agent sends statuses flat out.
	scaleSaturate = 15 * time.Second
	// scaleRounds spec changes, each with a sync request, per Application
	// while the statuses flow.
	scaleRounds = 3
	// scaleIdleProbes round trips measure the idle ack latency; the probe
	// waits scaleProbeGap between round trips.
	scaleIdleProbes = 200
	scaleProbeGap   = 5 * time.Millisecond
	scaleProbe      = "sim-probe"
	// scaleLoaded is how long every agent sends scaleLoadedRate statuses
	// a second (a fifth of what 2 cores carry flat out).
	scaleLoaded     = 5 * time.Second
	scaleLoadedRate = 200
)

// BenchmarkPrincipalScale: 100 simulated agents, each on its own gRPC
// connection with its own mTLS certificate from the workbench CA and its
// own hub namespace of 5 Applications, against one principal on an
// embedded hub. Every agent speaks the protocol as the real one does
// (Hello, a cumulative Ack of each message the principal sends, numbered
// statuses, an operation it received reported finished in its next
// status). First every agent paces 200 statuses a second for
// scaleLoaded, then sends them as fast as it can for scaleSaturate while
// the hub changes every Application's spec and requests a sync of it
// scaleRounds times. It reports:
//
//   - status-msgs/s: statuses acknowledged by the principal per second
//     while saturated (it acknowledges once a status is recorded; the
//     newest per Application is written to the hub);
//   - hub-writes/s: status writes the principal actually made on the hub
//     (seen by a watch, from the first saturating status until the hub
//     shows every agent's last one);
//   - ms-ack-p50/p99-idle, -loaded and -saturated: send → ack of one more
//     agent's status, one at a time, before the load, under the paced
//     load and saturated;
//   - ms-tcp-echo-p99-*: a one-byte round trip over loopback TCP in this
//     process in the same phases, the share of the machine and the Go
//     runtime in those latencies (everything runs on the same cores);
//   - duplicates: an operation delivered to an agent twice, or a spec sent
//     again with the checksum the agent already holds. Any is a failure,
//     as is an agent missing an operation or its Applications' last spec,
//     or the hub missing an agent's last status.
func BenchmarkPrincipalScale(b *testing.B) {
	_, lib := benchWorkbench(b, "--spokes", "0", "--clusters-only")
	cfg, err := lib.RESTConfig("hub")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca, err := lib.CA()
	if err != nil {
		b.Fatal(err)
	}
	serving, err := ca.Issue(pki.Request{CommonName: "tether-principal", Server: true, DNSNames: []string{"tether-principal.tether-system.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		b.Fatal(err)
	}
	stls, err := principal.ServerTLS(ca.CertPEM, serving.CertPEM, serving.KeyPEM)
	if err != nil {
		b.Fatal(err)
	}
	// The principal's requests to the hub are counted by kind and answer,
	// to say what its hub writes are spent on.
	reqs := &hubRequests{n: map[string]int{}, took: map[string]time.Duration{}}
	pcfg := rest.CopyConfig(cfg)
	pcfg.Wrap(reqs.wrap)
	p, err := principal.New(principal.Options{Hub: pcfg, Listen: "127.0.0.1:0", TLS: stls})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = p.Run(ctx) }()
	addr := p.Addr().String()

	// The benchmark's own client creates 600 objects and patches 1 500
	// times; client-go's default of 5 requests per second would be the
	// figure.
	ccfg := rest.CopyConfig(cfg)
	ccfg.QPS, ccfg.Burst = 1000, 1000
	dyn, cs := dynamic.NewForConfigOrDie(ccfg), kubernetes.NewForConfigOrDie(ccfg)
	// One more agent, with one Application, is the ack latency probe.
	agents := make([]*simAgent, scaleAgents+1)
	for i := range agents {
		name, apps := fmt.Sprintf("sim-%03d", i), scaleApps
		if i == scaleAgents {
			name, apps = scaleProbe, 1
		}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		var names []string
		for k := range apps {
			names = append(names, fmt.Sprintf("app-%d", k))
			createApp(b, dyn, name, names[k], "http://127.0.0.1:1/none.git", "r0", "x")
		}
		a, err := dialSimAgent(ctx, addr, ca, name, names)
		if err != nil {
			b.Fatal(err)
		}
		defer a.cc.Close()
		agents[i] = a
	}
	fleet, probe := agents[:scaleAgents], agents[scaleAgents]
	waitFor(b, 2*time.Minute, "every agent holding its Applications' specs", func() bool {
		for _, a := range agents {
			if a.specCount() < len(a.apps) {
				return false
			}
		}
		return true
	})
	hub, err := watchHubStatuses(ctx, dyn)
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	idleWake := make(chan struct{})
	idleEcho, err := loopbackEcho(idleWake)
	if err != nil {
		b.Fatal(err)
	}
	idle, err := probe.probe(scaleIdleProbes, nil)
	close(idleWake)
	if err != nil {
		b.Fatal(err)
	}

	// Loaded: every agent paces its statuses at scaleLoadedRate a second,
	// which the machine carries with processor time to spare, so the
	// probe sees what heavy status traffic costs an ack by itself.
	loadStop := make(chan struct{})
	loadEcho, err := loopbackEcho(loadStop)
	if err != nil {
		b.Fatal(err)
	}
	loadErrs := make(chan error, len(fleet))
	var pacers sync.WaitGroup
	for _, a := range fleet {
		pacers.Add(1)
		go func() {
			defer pacers.Done()
			if err := a.pace(scaleLoadedRate, loadStop); err != nil {
				loadErrs <- err
			}
		}()
	}
	time.AfterFunc(scaleLoaded, func() { close(loadStop) })
	loaded, err := probe.probe(0, loadStop)
	pacers.Wait()
	close(loadErrs)
	if err != nil {
		b.Fatal(err)
	}
	for err := range loadErrs {
		b.Fatal(err)
	}
	var loadedSent uint64
	for _, a := range fleet {
		loadedSent += a.sentCount()
	}
	waitFor(b, time.Minute, "every paced status acknowledged", func() bool {
		for _, a := range fleet {
			if a.acked.Load() < a.sentCount() {
				return false
			}
		}
		return true
	})

	// Saturation: statuses flat out, the hub's specs and sync requests
	// changing meanwhile, the probe measuring throughout.
	stop := make(chan struct{})
	var senders sync.WaitGroup
	sendErrs := make(chan error, len(fleet))
	start := time.Now()
	writesBefore := hub.writeCount()
	reqsBefore := reqs.snapshot()
	for _, a := range fleet {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.sendStatus(a.apps[k%len(a.apps)]); err != nil {
					sendErrs <- fmt.Errorf("%s: send status: %w", a.name, err)
					return
				}
			}
		}()
	}
	type probeResult struct {
		lat []time.Duration
		err error
	}
	probed := make(chan probeResult, 1)
	go func() { lat, err := probe.probe(0, stop); probed <- probeResult{lat, err} }()
	satEcho, err := loopbackEcho(stop)
	if err != nil {
		b.Fatal(err)
	}
	type changeResult struct {
		want map[string]string
		err  error
	}
	changed := make(chan changeResult, 1)
	var changedIn time.Duration
	go func() {
		want, err := changeSpecs(ctx, dyn, fleet, scaleRounds)
		changedIn = time.Since(start)
		changed <- changeResult{want, err}
	}()
	time.Sleep(scaleSaturate)
	close(stop)
	senders.Wait()
	close(sendErrs)
	for err := range sendErrs {
		b.Fatal(err)
	}
	sent := -loadedSent
	for _, a := range fleet {
		sent += a.sentCount()
	}
	waitFor(b, 2*time.Minute, "every status acknowledged", func() bool {
		for _, a := range fleet {
			if a.acked.Load() < a.sentCount() {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	writesAcked := hub.writeCount() - writesBefore
	sat := <-probed
	if sat.err != nil {
		b.Fatal(sat.err)
	}
	ch := <-changed
	if ch.err != nil {
		b.Fatal(ch.err)
	}
	waitFor(b, 2*time.Minute, "the hub showing every agent's last status", func() bool {
		for _, a := range agents {
			for app, rev := range a.lastRevs() {
				if hub.revision(a.name, app) != rev {
					return false
				}
			}
		}
		return true
	})
	settled := time.Since(start)
	writes := hub.writeCount() - writesBefore
	b.Logf("the principal's hub requests while saturated and settling: %s", reqs.since(reqsBefore))
	waitFor(b, 2*time.Minute, "every agent holding its Applications' last spec and every sync request", func() bool {
		for _, a := range fleet {
			if !a.holds(ch.want) {
				return false
			}
		}
		return true
	})
	b.StopTimer()
	hubWrite, err := hubWriteLatency(ctx, dyn, scaleProbe, probe.apps[0], 50)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("spec changes and sync requests made in %s", changedIn.Round(time.Millisecond))
	b.Logf("hub status writes: %d until every status was acknowledged (%s), %d until settled; one status write at a time on the idle hub takes p50/p99 %.1f/%.1f ms",
		writesAcked, elapsed.Round(time.Millisecond), writes, quantileMs(hubWrite, 0.5), quantileMs(hubWrite, 0.99))

	dups := 0
	for _, a := range agents {
		if err := a.err(); err != nil {
			b.Fatalf("%s: stream broke: %v", a.name, err)
		}
		d, ops := a.duplicates()
		if d+ops > 0 {
			b.Logf("%s: %d specs sent again unchanged, %d operations delivered twice", a.name, d, ops)
		}
		dups += d + ops
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "status-msgs/s")
	b.ReportMetric(float64(writes)/settled.Seconds(), "hub-writes/s")
	b.ReportMetric(quantileMs(idle, 0.50), "ms-ack-p50-idle")
	b.ReportMetric(quantileMs(idle, 0.99), "ms-ack-p99-idle")
	b.ReportMetric(quantileMs(loaded, 0.50), "ms-ack-p50-loaded")
	b.ReportMetric(quantileMs(loaded, 0.99), "ms-ack-p99-loaded")
	b.ReportMetric(quantileMs(sat.lat, 0.50), "ms-ack-p50-saturated")
	b.ReportMetric(quantileMs(sat.lat, 0.99), "ms-ack-p99-saturated")
	b.ReportMetric(float64(dups), "duplicates")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
	iw, lw, sw := <-idleEcho, <-loadEcho, <-satEcho
	b.ReportMetric(quantileMs(iw, 0.99), "ms-tcp-echo-p99-idle")
	b.ReportMetric(quantileMs(lw, 0.99), "ms-tcp-echo-p99-loaded")
	b.ReportMetric(quantileMs(sw, 0.99), "ms-tcp-echo-p99-saturated")
	b.Logf("%d statuses in %s (%.0f/s), %d hub status writes until settled in %s (%.1f/s); ack p50/p99 idle %.2f/%.2f ms (%d probes), loaded (%d statuses/s) %.2f/%.2f ms (%d probes), saturated %.2f/%.2f ms (%d probes); loopback TCP echo p50/p99 idle %.2f/%.2f ms, loaded %.2f/%.2f ms, saturated %.2f/%.2f ms; %d duplicates; heap %.0f MiB",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), writes, settled.Round(time.Millisecond), float64(writes)/settled.Seconds(),
		quantileMs(idle, 0.5), quantileMs(idle, 0.99), len(idle), scaleAgents*scaleLoadedRate, quantileMs(loaded, 0.5), quantileMs(loaded, 0.99), len(loaded), quantileMs(sat.lat, 0.5), quantileMs(sat.lat, 0.99), len(sat.lat),
		quantileMs(iw, 0.5), quantileMs(iw, 0.99), quantileMs(lw, 0.5), quantileMs(lw, 0.99), quantileMs(sw, 0.5), quantileMs(sw, 0.99), dups, float64(ms.HeapInuse)/(1<<20))
	if dups > 0 {
		b.Fatalf("%d duplicate deliveries", dups)
	}
}

// simAgent is one simulated agent: the protocol as the real agent speaks
// it, over its own mTLS connection, recording what it receives.
type simAgent struct {
	name string
	apps []string
	cc   *grpc.ClientConn
	s    protocol.Stream

	// sendMu serializes Send, which gRPC allows one goroutine at a time.
	sendMu sync.Mutex
	seq    uint64 // the last status's number; under sendMu
	sent   atomic.Uint64

	// acked is the principal's highest Ack; ackWake is signalled after it
	// rises.
	acked   atomic.Uint64
	ackWake chan struct{}

	mu sync.Mutex
	// specs holds the checksum of the last spec received per Application.
	specs map[string]string
	// ops counts deliveries per operation ID.
	ops map[string]int
	// finish holds, per Application, an operation to report as finished
	// in its next status, as the real agent does once it has run it.
	finish map[string]string
	// revs holds the revision of the last status sent per Application.
	revs             map[string]string
	status           int
	dupSpecs, dupOps int
	recvErr          error
}

func dialSimAgent(ctx context.Context, addr string, ca *pki.CA, name string, apps []string) (*simAgent, error) {
	pair, err := principal.AgentCertificate(ca, name)
	if err != nil {
		return nil, err
	}
	ctls, err := agent.ClientTLS(ca.CertPEM, pair.CertPEM, pair.KeyPEM, "tether-principal.tether-system.svc")
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(ctls)))
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", name, err)
	}
	s, err := protocol.Dial(ctx, cc)
	if err != nil {
		cc.Close()
		return nil, fmt.Errorf("%s: open stream: %w", name, err)
	}
	a := &simAgent{name: name, apps: apps, cc: cc, s: s, ackWake: make(chan struct{}, 1),
		specs: map[string]string{}, ops: map[string]int{}, finish: map[string]string{}, revs: map[string]string{}}
	if err := s.Send(&protocol.Message{Hello: &protocol.Hello{Version: "bench", Mode: protocol.ModeManaged, Apps: map[string]string{}}}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("%s: hello: %w", name, err)
	}
	go a.receive()
	return a, nil
}

// receive records and acknowledges every message of the principal, and
// notes its acknowledgements, until the stream ends.
func (a *simAgent) receive() {
	for {
		m, err := a.s.Recv()
		if err != nil {
			a.mu.Lock()
			a.recvErr = err
			a.mu.Unlock()
			return
		}
		if m.Ack > a.acked.Load() {
			a.acked.Store(m.Ack)
			select {
			case a.ackWake <- struct{}{}:
			default:
			}
		}
		if m.Seq == 0 {
			continue
		}
		a.mu.Lock()
		switch {
		case m.App != nil && !m.App.Deleted:
			if a.specs[m.App.Name] == m.App.Checksum {
				a.dupSpecs++
			}
			a.specs[m.App.Name] = m.App.Checksum
		case m.Operation != nil:
			id := m.Operation.Operation.ID
			if a.ops[id] > 0 {
				a.dupOps++
			}
			a.ops[id]++
			a.finish[m.Operation.App] = id
		}
		a.mu.Unlock()
		a.sendMu.Lock()
		err = a.s.Send(&protocol.Message{Ack: m.Seq})
		a.sendMu.Unlock()
		if err != nil {
			a.mu.Lock()
			a.recvErr = fmt.Errorf("ack: %w", err)
			a.mu.Unlock()
			return
		}
	}
}

// sendStatus sends a new status of app and returns its number. Only one
// goroutine per agent sends statuses, so revs follows the stream's order.
func (a *simAgent) sendStatus(app string) (uint64, error) {
	a.mu.Lock()
	a.status++
	rev := fmt.Sprintf("%s-%d", a.name, a.status)
	st := &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: "Synced", Revision: rev}, Health: v1alpha1.HealthStatus{Status: "Healthy"}}
	if id := a.finish[app]; id != "" {
		now := metav1.Now()
		st.OperationState = &v1alpha1.OperationState{Operation: v1alpha1.Operation{ID: id, Sync: &v1alpha1.SyncOperation{}}, Phase: v1alpha1.OperationSucceeded, StartedAt: now, FinishedAt: &now}
		delete(a.finish, app)
	}
	a.revs[app] = rev
	a.mu.Unlock()
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	a.seq++
	if err := a.s.Send(&protocol.Message{Seq: a.seq, Status: &protocol.StatusUpdate{Name: app, Status: st}}); err != nil {
		return 0, err
	}
	a.sent.Store(a.seq)
	return a.seq, nil
}

// pace sends rate statuses a second, round the agent's Applications,
// until stop is closed.
func (a *simAgent) pace(rate int, stop <-chan struct{}) error {
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	per := rate * int(tick) / int(time.Second)
	for k := 0; ; {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		for range per {
			if _, err := a.sendStatus(a.apps[k%len(a.apps)]); err != nil {
				return fmt.Errorf("%s: send status: %w", a.name, err)
			}
			k++
		}
	}
}

func (a *simAgent) sentCount() uint64 { return a.sent.Load() }

// probe measures send → ack of one status at a time: n round trips, or
// until stop is closed when n is 0.
func (a *simAgent) probe(n int, stop <-chan struct{}) ([]time.Duration, error) {
	var out []time.Duration
	for n == 0 || len(out) < n {
		select {
		case <-stop:
			return out, nil
		default:
		}
		t := time.Now()
		seq, err := a.sendStatus(a.apps[0])
		if err != nil {
			return out, fmt.Errorf("probe: %w", err)
		}
		for a.acked.Load() < seq {
			select {
			case <-a.ackWake:
			case <-time.After(time.Minute):
				return out, fmt.Errorf("probe: no ack of %d within a minute", seq)
			}
		}
		out = append(out, time.Since(t))
		time.Sleep(scaleProbeGap)
	}
	return out, nil
}

func (a *simAgent) specCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.specs)
}

func (a *simAgent) lastRevs() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.revs)
}

// holds says whether the agent has the spec want names for each of its
// Applications ("agent/app" → checksum) and every sync request the hub
// made of them (changeSpecs).
func (a *simAgent) holds(want map[string]string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, app := range a.apps {
		if a.specs[app] != want[a.name+"/"+app] {
			return false
		}
		for r := 1; r <= scaleRounds; r++ {
			if a.ops[scaleOpID(a.name, app, r)] == 0 {
				return false
			}
		}
	}
	return true
}

func (a *simAgent) duplicates() (specs, ops int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dupSpecs, a.dupOps
}

func (a *simAgent) err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recvErr
}

func scaleOpID(agent, app string, round int) string {
	return fmt.Sprintf("%s-%s-r%d", agent, app, round)
}

// changeSpecs changes the spec of every agent's Applications and requests
// a sync of each, rounds times, a few patches at a time, and returns the
// checksum of each one's last spec ("agent/app" → checksum).
func changeSpecs(ctx context.Context, dyn dynamic.Interface, agents []*simAgent, rounds int) (map[string]string, error) {
	type target struct{ agent, app string }
	var targets []target
	for _, a := range agents {
		for _, app := range a.apps {
			targets = append(targets, target{a.name, app})
		}
	}
	want := map[string]string{}
	var mu sync.Mutex
	for r := 1; r <= rounds; r++ {
		work := make(chan target)
		errs := make(chan error, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := range work {
					patch := fmt.Sprintf(`{"spec":{"source":{"path":"r%d"}},"operation":{"id":%q,"sync":{}}}`, r, scaleOpID(t.agent, t.app, r))
					u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(t.agent).Patch(ctx, t.app, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
					if err == nil {
						var app *v1alpha1.Application
						if app, err = v1alpha1.ApplicationFrom(u); err == nil {
							mu.Lock()
							want[t.agent+"/"+t.app] = protocol.SpecChecksum(&app.Spec)
							mu.Unlock()
						}
					}
					if err != nil {
						errs <- fmt.Errorf("change %s/%s: %w", t.agent, t.app, err)
						return
					}
				}
			}()
		}
	feed:
		for _, t := range targets {
			select {
			case work <- t:
			case err := <-errs:
				close(work)
				wg.Wait()
				return nil, err
			case <-ctx.Done():
				break feed
			}
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errs:
			return nil, err
		default:
		}
	}
	return want, ctx.Err()
}

// hubStatuses follows the hub's Applications with a watch and counts the
// status writes it sees: each status an agent sends carries a new
// revision, so a changed revision is one write.
type hubStatuses struct {
	mu     sync.Mutex
	revs   map[string]string // "namespace/name" → status.sync.revision
	writes int
}

func watchHubStatuses(ctx context.Context, dyn dynamic.Interface) (*hubStatuses, error) {
	h := &hubStatuses{revs: map[string]string{}}
	res := dyn.Resource(v1alpha1.ApplicationsResource)
	relist := func() (string, error) {
		l, err := res.List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", fmt.Errorf("list hub Applications: %w", err)
		}
		for i := range l.Items {
			h.see(&l.Items[i])
		}
		return l.GetResourceVersion(), nil
	}
	rv, err := relist()
	if err != nil {
		return nil, err
	}
	go func() {
		for ctx.Err() == nil {
			w, err := res.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				u, ok := ev.Object.(*unstructured.Unstructured)
				switch {
				case ev.Type == watch.Error || !ok:
					// Too far behind (410 Gone): what changed meanwhile
					// counts as one write each.
					if v, err := relist(); err == nil {
						rv = v
					}
				case ev.Type == watch.Bookmark:
					rv = u.GetResourceVersion()
				default:
					rv = u.GetResourceVersion()
					h.see(u)
				}
			}
			w.Stop()
		}
	}()
	return h, nil
}

func (h *hubStatuses) see(u *unstructured.Unstructured) {
	rev, _, _ := unstructured.NestedString(u.Object, "status", "sync", "revision")
	key := u.GetNamespace() + "/" + u.GetName()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.revs[key] != rev {
		h.revs[key] = rev
		// The probe's are left out: one write per round trip, they would
		// count as throughput what is latency.
		if u.GetNamespace() != scaleProbe {
			h.writes++
		}
	}
}

func (h *hubStatuses) revision(ns, name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.revs[ns+"/"+name]
}

func (h *hubStatuses) writeCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writes
}

// loopbackEcho measures, until stop is closed, round trips of one byte
// over a loopback TCP connection inside this process, one every
// scaleProbeGap: the machine's and the Go runtime's share of an ack's
// latency (a goroutine woken by the network waits behind every runnable
// one), without the protocol.
func loopbackEcho(stop <-chan struct{}) (<-chan []time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("echo listener: %w", err)
	}
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("echo dial: %w", err)
	}
	out := make(chan []time.Duration, 1)
	go func() {
		defer c.Close()
		var rtt []time.Duration
		buf := make([]byte, 1)
		for {
			select {
			case <-stop:
				out <- rtt
				return
			default:
			}
			t := time.Now()
			if _, err := c.Write(buf); err != nil {
				out <- rtt
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				out <- rtt
				return
			}
			rtt = append(rtt, time.Since(t))
			time.Sleep(scaleProbeGap)
		}
	}()
	return out, nil
}

// hubWriteLatency times n status writes of one Application, one after
// the other: what a status writer of the principal waits for each.
func hubWriteLatency(ctx context.Context, dyn dynamic.Interface, ns, name string, n int) ([]time.Duration, error) {
	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns)
	var out []time.Duration
	for i := range n {
		patch := fmt.Sprintf(`{"status":{"health":{"message":"write %d"}}}`, i)
		t := time.Now()
		if _, err := res.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
			return nil, fmt.Errorf("write status of %s/%s: %w", ns, name, err)
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}

// hubRequests counts a client's requests by method, resource and answer.
type hubRequests struct {
	mu sync.Mutex
	n  map[string]int
	// took sums each kind's time to answer.
	took map[string]time.Duration
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (h *hubRequests) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t := time.Now()
		resp, err := rt.RoundTrip(r)
		d := time.Since(t)
		what := "other"
		switch p := r.URL.Path; {
		case strings.Contains(p, "/agents"):
			what = "agents"
		case strings.Contains(p, "/applications") && strings.HasSuffix(p, "/status"):
			what = "applications/status"
		case strings.Contains(p, "/applications"):
			what = "applications"
		}
		key := r.Method + " " + what
		if r.URL.Query().Get("watch") == "true" {
			key += " (watch)"
		}
		if resp != nil {
			key += " " + strconv.Itoa(resp.StatusCode)
		}
		h.mu.Lock()
		h.n[key]++
		h.took[key] += d
		h.mu.Unlock()
		return resp, err
	})
}

type requestCounts struct {
	n    map[string]int
	took map[string]time.Duration
}

func (h *hubRequests) snapshot() requestCounts {
	h.mu.Lock()
	defer h.mu.Unlock()
	return requestCounts{maps.Clone(h.n), maps.Clone(h.took)}
}

// since lists the requests made after before was taken, with the mean
// time each kind took to answer.
func (h *hubRequests) since(before requestCounts) string {
	var out []string
	now := h.snapshot()
	for k, v := range now.n {
		if d := v - before.n[k]; d > 0 {
			mean := (now.took[k] - before.took[k]) / time.Duration(d)
			out = append(out, fmt.Sprintf("%s: %d (mean %s)", k, d, mean.Round(100*time.Microsecond)))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// quantileMs is the q-quantile of ds (nearest rank) in milliseconds.
func quantileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(i, 0)].Microseconds()) / 1000
}
