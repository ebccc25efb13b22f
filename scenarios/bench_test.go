package scenarios

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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

// BenchmarkPrincipalThroughput: status messages per second through one
// principal from many simulated agents (real gRPC with mTLS, real hub
// writes), and the principal's heap.
func BenchmarkPrincipalThroughput(b *testing.B) {
	const agents = 50
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
	p, err := principal.New(principal.Options{Hub: cfg, Listen: "127.0.0.1:0", TLS: stls})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = p.Run(ctx) }()
	addr := p.Addr().String()
	dyn, cs := dynamic.NewForConfigOrDie(cfg), kubernetes.NewForConfigOrDie(cfg)
	streams := make([]protocol.Stream, agents)
	for i := range agents {
		name := fmt.Sprintf("sim-%02d", i)
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		createApp(b, dyn, name, "app", "http://127.0.0.1:1/none.git", "x", "x")
		pair, err := principal.AgentCertificate(ca, name)
		if err != nil {
			b.Fatal(err)
		}
		ctls, err := agent.ClientTLS(ca.CertPEM, pair.CertPEM, pair.KeyPEM, "tether-principal.tether-system.svc")
		if err != nil {
			b.Fatal(err)
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(ctls)))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		s, err := protocol.Dial(ctx, cc)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Send(&protocol.Message{Hello: &protocol.Hello{Mode: protocol.ModeManaged, Apps: map[string]string{}}}); err != nil {
			b.Fatal(err)
		}
		streams[i] = s
	}
	// Acknowledgements are cumulative and sent after the principal wrote
	// the status to the hub, so the highest one per agent says how far it
	// has got.
	acked := make([]atomic.Uint64, agents)
	var wg sync.WaitGroup
	perAgent := uint64(20 * b.N)
	b.ResetTimer()
	start := time.Now()
	for i, s := range streams {
		go func() {
			for {
				m, err := s.Recv()
				if err != nil {
					return
				}
				if m.Ack > acked[i].Load() {
					acked[i].Store(m.Ack)
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := uint64(1); k <= perAgent; k++ {
				st := &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: "Synced", Revision: fmt.Sprintf("%d-%d", i, k)}}
				if err := s.Send(&protocol.Message{Seq: k, Status: &protocol.StatusUpdate{Name: "app", Status: st}}); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(b, 5*time.Minute, "every status acknowledged", func() bool {
		for i := range acked {
			if acked[i].Load() < perAgent {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(agents*int(perAgent))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
}
