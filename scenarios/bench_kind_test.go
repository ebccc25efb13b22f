package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/scenarios/harness"
)

const (
	// kindBenchRuns is how many times the reference create and the tether up
	// each run; TETHER_BENCH_KIND_RUNS overrides it. Three give a median
	// that one slow run (a cold page cache, the first image build of a
	// workbench) does not move.
	kindBenchRuns = 3
	// kindBenchUpTimeout bounds one `tether up`: a hung up must fail the
	// benchmark, not hold it until go test's -timeout kills it without
	// running `tether down`.
	kindBenchUpTimeout = 30 * time.Minute
	// kindBenchDownTimeout bounds one `tether down`.
	kindBenchDownTimeout = 10 * time.Minute
	// kindWaitForReady is how long kind waits for the control-plane node to
	// be Ready; the same as the kind provider's waitForReady.
	kindWaitForReady = 3 * time.Minute
	// tetherNodeImageRepo is where tether tags its offline-built node
	// images (nodeimage.Repository, which scenarios may not import: it is
	// below cluster/internal).
	tetherNodeImageRepo = "tether.local/kind-node"
	// kubeletNoFailCgroupV1 is the kubeadm patch the kind provider puts
	// into every cluster's configuration (kind.go: kubeletNoFailCgroupV1).
	kubeletNoFailCgroupV1 = "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nfailCgroupV1: false\n"
	// preparedPrefix starts the line `tether prepare --provider kind`
	// prints with the image it made sure Docker has.
	preparedPrefix = "The kind node image is ready: "
)

// BenchmarkKindUp measures the kind provider against kind itself, on this
// machine's Docker engine:
//
//   - node-image-s: `tether prepare --provider kind` when Docker has the
//     node image, what every up after the first pays to choose it;
//   - node-image-assembly-s: the same after `docker image rm` of tether's
//     offline-built image, which rebuilds it from the cached Kubernetes
//     binaries and Debian root filesystem (the warm build). It includes
//     prepare's attempt to pull kind's default image first (up to 60 s on a
//     machine that hangs rather than refuses). The cold build (compiling
//     kubelet and co., debootstrap) takes many minutes, happens once per
//     machine and would dominate the table, so it is measured once by hand
//     and stated in README.md instead: docker image rm the image, then time
//     `tether prepare --provider kind --cache-dir "$(mktemp -d)"` (an empty
//     cache, so nothing is reused);
//   - kind-create-ref-{min,median,max}-s: one plain kind cluster made with
//     kind's Go library on the same node image and configuration as a tether
//     cluster, from the Create call until it returns (control plane Ready);
//   - tether-up-{min,median,max}-s: `tether up --provider kind --spokes 2`,
//     hub and 2 spokes plus the whole GitOps system, until every sample
//     Application is Synced and Healthy;
//   - up/ref-create: the ratio of the medians. The goal is at most 1.5:
//     tether creates its clusters in parallel, so the whole workbench
//     should cost little more than one cluster's create.
//
// It skips where no Docker engine answers. It takes minutes per run; run it
// alone with
//
//	go test -run '^$' -bench '^BenchmarkKindUp$' -benchtime 1x -timeout 120m ./scenarios/
//
// Progress goes to stderr as each step finishes.
func BenchmarkKindUp(b *testing.B) {
	ctx := b.Context()
	if err := cluster.DockerEngineAnswers(ctx); err != nil {
		b.Skip("BenchmarkKindUp needs a Docker engine: " + err.Error())
	}
	runs := kindRuns(b)
	bin := benchTether(b)
	cache, err := cluster.DefaultCacheDir()
	if err != nil {
		b.Fatal(err)
	}

	// The node image. The first prepare makes sure Docker has it (a pull or
	// a cold build when it had none: not a figure); the second is the warm
	// one users see on every later up.
	wb := kindBenchWorkbench(b, bin, cache)
	image, first := kindPrepare(ctx, b, wb)
	kindProgress("node image %s ready (first prepare: %s)", image, secs(first))
	again, warm := kindPrepare(ctx, b, wb)
	if again != image {
		b.Fatalf("prepare chose %s, then %s with nothing changed in between", image, again)
	}
	b.ReportMetric(warm.Seconds(), "node-image-s")
	kindProgress("node image, warm prepare: %s", secs(warm))
	image = measureAssembly(ctx, b, wb, image)

	// The reference and tether's up alternate, so whatever drifts over the
	// run (page cache, Docker's state, the machine's load) weighs on both
	// alike.
	var refs, ups, refCPU, upCPU []time.Duration
	for i := range runs {
		run := fmt.Sprintf("run %d/%d", i+1, runs)
		d, cpu := kindCreateRef(ctx, b, run, image)
		refs, refCPU = append(refs, d), append(refCPU, cpu)
		d, cpu = tetherUpKind(ctx, b, run, bin, cache)
		ups, upCPU = append(ups, d), append(upCPU, cpu)
	}
	reportSpread(b, "kind-create-ref", refs)
	reportSpread(b, "tether-up", ups)
	ratio := median(ups).Seconds() / median(refs).Seconds()
	b.ReportMetric(ratio, "up/ref-create")
	kindProgress("median up / median reference create = %.2f (goal: at most 1.5)", ratio)
	reportCPUFloor(b, refs, refCPU, upCPU)
}

// reportCPUFloor reports what the nodes' processor time says about the
// 1.5 goal on this machine. Three control planes booting at once need
// about three times the processor time of one; with fewer cores than
// that, parallel creates share them and no ordering of the work can make
// up finish sooner than its total processor time divided by the cores:
//
//   - kind-create-ref-cpu-s: median processor time the reference node's
//     container used during its create;
//   - tether-up-cpu-s: median processor time all of up's node containers
//     used during up (tether itself, on the host, not counted: the floor
//     is a lower bound);
//   - up-cpu-floor-s: that divided by the machine's cores;
//   - up-floor/ref-create: the floor over the median reference create.
//     Above 1.5, the goal cannot be met on this machine whatever up does.
//
// A run whose processor time could not be read (a Docker engine not on
// the local socket) leaves these out.
func reportCPUFloor(b *testing.B, refs, refCPU, upCPU []time.Duration) {
	if slices.Contains(refCPU, 0) || slices.Contains(upCPU, 0) {
		kindProgress("node processor time not read: no CPU floor reported")
		return
	}
	cores := runtime.NumCPU()
	floor := median(upCPU) / time.Duration(cores)
	b.ReportMetric(median(refCPU).Seconds(), "kind-create-ref-cpu-s")
	b.ReportMetric(median(upCPU).Seconds(), "tether-up-cpu-s")
	b.ReportMetric(floor.Seconds(), "up-cpu-floor-s")
	b.ReportMetric(floor.Seconds()/median(refs).Seconds(), "up-floor/ref-create")
	kindProgress("node processor time: reference create %s, up %s; on %d cores up cannot take less than %s = %.2f x the median reference create",
		secs(median(refCPU)), secs(median(upCPU)), cores, secs(floor), floor.Seconds()/median(refs).Seconds())
}

// nodeCPU is the processor time the kind node containers created at or
// after since (of any kind cluster) have used so far, from the Docker
// engine's stats, or 0 with a progress line when it cannot be read.
func nodeCPU(ctx context.Context, since time.Time) time.Duration {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-q", "--no-trunc", "--filter", "label=io.x-k8s.kind.role").Output()
	if err != nil {
		kindProgress("list kind nodes for their processor time: %v", err)
		return 0
	}
	var total time.Duration
	for _, id := range strings.Fields(string(out)) {
		created, cpu, err := containerCPU(ctx, id)
		if err != nil {
			kindProgress("processor time of node %s: %v", id[:12], err)
			return 0
		}
		if !created.Before(since.Add(-time.Second)) {
			total += cpu
		}
	}
	return total
}

// containerCPU asks the Docker engine on its local socket for a
// container's creation time and cumulative processor time (cgroup v1 and
// v2 alike: the engine reads whichever the host has).
func containerCPU(ctx context.Context, id string) (time.Time, time.Duration, error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" && h != "unix:///var/run/docker.sock" {
		return time.Time{}, 0, fmt.Errorf("DOCKER_HOST=%s: only the local socket is read", h)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", "/var/run/docker.sock")
	}}}
	defer c.CloseIdleConnections()
	var info struct{ Created time.Time }
	if err := dockerGet(ctx, c, "/containers/"+id+"/json", &info); err != nil {
		return time.Time{}, 0, err
	}
	var stats struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
	}
	if err := dockerGet(ctx, c, "/containers/"+id+"/stats?stream=false&one-shot=true", &stats); err != nil {
		return time.Time{}, 0, err
	}
	return info.Created, time.Duration(stats.CPU.Usage.Total), nil
}

func dockerGet(ctx context.Context, c *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// kindRuns is kindBenchRuns, or TETHER_BENCH_KIND_RUNS when set.
func kindRuns(b *testing.B) int {
	s := os.Getenv("TETHER_BENCH_KIND_RUNS")
	if s == "" {
		return kindBenchRuns
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("TETHER_BENCH_KIND_RUNS=%q: want a whole number, at least 1", s)
	}
	return n
}

// benchTether builds the tether binary, as benchWorkbench does. The
// Ginkgo suite's tetherBin is not set here: go test -run '^$' -bench does
// not run TestScenarios, whose SynchronizedBeforeSuite builds it.
func benchTether(b *testing.B) string {
	b.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin, err := harness.BuildTether(b.Context(), root, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// kindBenchWorkbench is a fresh isolated workbench: its own state folder
// (so its own kind cluster names: they derive from it) and kubeconfig, the
// user's cache, where the node image's binaries and root filesystem are
// kept, as newWorkbench does for the suite.
func kindBenchWorkbench(b *testing.B, bin, cache string) *harness.Driver {
	dir := b.TempDir()
	return &harness.Driver{Bin: bin, StateDir: dir + "/state", CacheDir: cache, Kubeconfig: dir + "/kubeconfig"}
}

// kindPrepare runs `tether prepare --provider kind` and returns the image
// it printed and how long it took.
func kindPrepare(ctx context.Context, b *testing.B, wb *harness.Driver) (string, time.Duration) {
	b.Helper()
	start := time.Now()
	res := wb.Run(ctx, "prepare", "--provider", "kind")
	d := time.Since(start)
	if res.ExitCode != 0 {
		b.Fatalf("tether prepare --provider kind: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	for _, l := range strings.Split(res.Stdout, "\n") {
		if ref, ok := strings.CutPrefix(strings.TrimSpace(l), preparedPrefix); ok && ref != "" {
			return ref, d
		}
	}
	b.Fatalf("tether prepare --provider kind printed no %q line:\n%s", preparedPrefix, res.Stdout)
	return "", 0
}

// isTetherNodeImage is the kind provider's isTetherImage: tether's
// offline-built node images need a kind configuration of their own.
func isTetherNodeImage(image string) bool {
	return strings.HasPrefix(image, tetherNodeImageRepo+":") || strings.HasPrefix(image, tetherNodeImageRepo+"@")
}

// measureAssembly reports node-image-assembly-s: tether's node image
// removed, then prepared again. It returns the node image Docker has
// afterwards, which the rest of the benchmark uses. Nothing is forced: an
// image a container still uses (a cluster running on it) is kept, and the
// figure left out.
func measureAssembly(ctx context.Context, b *testing.B, wb *harness.Driver, image string) string {
	b.Helper()
	if !isTetherNodeImage(image) {
		kindProgress("node image %s is not tether's offline build: no assembly to measure", image)
		return image
	}
	if out, err := exec.CommandContext(ctx, "docker", "image", "rm", image).CombinedOutput(); err != nil {
		kindProgress("node image kept, assembly not measured: docker image rm %s: %v: %s", image, err, strings.TrimSpace(string(out)))
		return image
	}
	rebuilt, d := kindPrepare(ctx, b, wb)
	if rebuilt != image {
		// Only when kind's default image could be pulled after all: the
		// figure would be a pull, not an assembly.
		kindProgress("after removing %s, prepare chose %s (in %s): assembly not measured; the runs use %s", image, rebuilt, secs(d), rebuilt)
		return rebuilt
	}
	b.ReportMetric(d.Seconds(), "node-image-assembly-s")
	kindProgress("node image, warm build (cached binaries and root filesystem): %s", secs(d))
	return image
}

// kindRefConfig is the kind configuration the kind provider gives a tether
// cluster (clusterConfig in cluster/internal/providers/kind/kind.go, which
// scenarios may not import), with the default API server port: one
// control-plane node on the image, the API server on loopback, the kubelet
// allowed on cgroup v1, and no kindnetd when the image is tether's (it
// bakes its own CNI configuration in). Keep the two alike.
func kindRefConfig(name, image string) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta:             v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:                 name,
		Nodes:                []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: image}},
		KubeadmConfigPatches: []string{kubeletNoFailCgroupV1},
	}
	cfg.Networking.APIServerAddress = "127.0.0.1"
	if isTetherNodeImage(image) {
		cfg.Networking.DisableDefaultCNI = true
	}
	return cfg
}

// kindCreateRef creates one plain kind cluster with kind's library, as
// the kind provider does, times it and deletes it. Its name is random, so
// it never meets a workbench's tether-<id>-* clusters; one a killed run
// leaves behind is tether-bench-ref-*.
func kindCreateRef(ctx context.Context, b *testing.B, run, image string) (time.Duration, time.Duration) {
	b.Helper()
	name := fmt.Sprintf("tether-bench-ref-%06x", rand.Uint32N(1<<24))
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	defer func() {
		if err := p.Delete(name, kubeconfig); err != nil {
			b.Errorf("delete reference kind cluster %s: %v", name, err)
		}
	}()
	start := time.Now()
	err := p.Create(name,
		kindcluster.CreateWithNodeImage(image),
		kindcluster.CreateWithV1Alpha4Config(kindRefConfig(name, image)),
		kindcluster.CreateWithWaitForReady(kindWaitForReady),
		kindcluster.CreateWithKubeconfigPath(kubeconfig),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	)
	d := time.Since(start)
	if err != nil {
		out := ""
		if re := kindexec.RunErrorForError(err); re != nil {
			out = "\n" + string(re.Output)
		}
		b.Fatalf("kind create cluster %s on %s: %v%s", name, image, err, out)
	}
	// kind returns no error when its wait for Ready times out, only a
	// warning: the figure would then be the timeout, not a create.
	if err := controlPlaneReady(ctx, kubeconfig); err != nil {
		b.Fatalf("reference kind cluster %s after %s: %v", name, secs(d), err)
	}
	cpu := nodeCPU(ctx, start)
	kindProgress("%s: kind create (reference, %s) %s, node processor time %s", run, name, secs(d), secs(cpu))
	return d, cpu
}

// controlPlaneReady checks that the cluster's nodes are Ready.
func controlPlaneReady(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(nodes.Items) == 0 {
		return fmt.Errorf("no nodes")
	}
	for _, n := range nodes.Items {
		if !nodeReady(n) {
			return fmt.Errorf("node %s is not Ready (kind's wait for Ready timed out)", n.Name)
		}
	}
	return nil
}

// tetherUpKind runs `tether up --provider kind --spokes 2` on a fresh
// workbench, times it, and always takes it down again, so the next run
// starts on an empty Docker engine and a failed up leaves nothing behind.
func tetherUpKind(ctx context.Context, b *testing.B, run, bin, cache string) (time.Duration, time.Duration) {
	b.Helper()
	wb := kindBenchWorkbench(b, bin, cache)
	defer func() {
		// Not ctx: down must run even when the benchmark is being stopped.
		dctx, cancel := context.WithTimeout(context.Background(), kindBenchDownTimeout)
		defer cancel()
		start := time.Now()
		if res := wb.Run(dctx, "down"); res.ExitCode != 0 {
			b.Errorf("tether down (state %s): exit %d\n%s", wb.StateDir, res.ExitCode, res.Stderr)
			return
		}
		kindProgress("%s: tether down %s", run, secs(time.Since(start)))
	}()
	uctx, cancel := context.WithTimeout(ctx, kindBenchUpTimeout)
	defer cancel()
	start := time.Now()
	res := wb.Run(uctx, "up", "--provider", "kind", "--spokes", "2")
	d := time.Since(start)
	if res.ExitCode != 0 {
		b.Fatalf("tether up --provider kind --spokes 2 after %s: exit %d\n%s", secs(d), res.ExitCode, res.Stderr)
	}
	// up waits for the sample Applications before it prints this: the
	// figure is the whole workbench, not just its clusters.
	if !strings.Contains(res.Stdout, "Every spoke's sample Application is Synced and Healthy on the hub") {
		b.Fatalf("tether up did not report the sample Synced and Healthy:\n%s", res.Stdout)
	}
	cpu := nodeCPU(ctx, start)
	kindProgress("%s: tether up --provider kind --spokes 2 %s, node processor time %s", run, secs(d), secs(cpu))
	return d, cpu
}

// reportSpread reports the min, median and max of ds as <name>-min-s etc.
func reportSpread(b *testing.B, name string, ds []time.Duration) {
	b.ReportMetric(slices.Min(ds).Seconds(), name+"-min-s")
	b.ReportMetric(median(ds).Seconds(), name+"-median-s")
	b.ReportMetric(slices.Max(ds).Seconds(), name+"-max-s")
}

// median of ds (the mean of the middle two when their number is even).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// kindProgress prints a progress line to stderr at once: the benchmark
// takes minutes, and b.Logf shows nothing until it ends. Lines start with
// "kind bench:" so benchtable never takes one for a result line.
func kindProgress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kind bench: %s\n", fmt.Sprintf(format, args...))
}

// secs prints a duration as the figures are reported: seconds.
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
