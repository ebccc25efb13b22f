package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/image"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/repo"
	"github.com/tether-dev/tether/gitops/sample"
)

// NodePorts on the hub node: spokes reach the principal and the Git server
// through the hub node's address on the kind network.
const (
	principalNodePort int32 = 30443
	gitNodePort       int32 = 30444
)

// upKind builds tether's image (no daemon, no Dockerfile) for the Docker
// engine's platform, loads it into every node, deploys the components as
// pods, and seeds the sample repository through a port-forward to the Git
// server pod when it has no sample yet.
func upKind(ctx context.Context, opts Options, hub cluster.Cluster, spokes []cluster.Cluster) (*State, error) {
	wb := opts.Workbench
	hubHost := hostOf(hub.InternalEndpoint)
	if hubHost == "" {
		return nil, fmt.Errorf("the hub %q has no address on the kind network recorded: run `tether down` and `tether up` again", hub.Name)
	}
	b := imageBuilder{
		docker:     runDocker,
		executable: opts.Bin,
		moduleRoot: func() string { return moduleRoot(opts.ModuleRoot) },
		runnable:   image.Runnable,
		build:      image.BuildBinary,
		logger:     opts.Logger,
	}
	step := opts.Progress.Start("build tether's image for the kind nodes (no Docker daemon)")
	work := filepath.Join(dir(wb), "image")
	if err := os.MkdirAll(work, 0o700); err != nil {
		step.Done(err)
		return nil, err
	}
	archive := filepath.Join(work, "tether.tar")
	ref, err := b.buildArchive(ctx, step, work, archive)
	step.Done(err)
	if err != nil {
		return nil, err
	}
	step = opts.Progress.Start("load " + ref + " into every node")
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range append([]cluster.Cluster{hub}, spokes...) {
		g.Go(func() error { return wb.LoadImage(gctx, c.Name, archive) })
	}
	err = g.Wait()
	step.Done(err)
	if err != nil {
		return nil, err
	}
	st := &State{
		Provider:  cluster.ProviderKind,
		GitURL:    fmt.Sprintf("http://%s:%d/%s.git", hubHost, gitNodePort, SampleRepo),
		Principal: fmt.Sprintf("%s:%d", hubHost, principalNodePort),
	}
	for _, s := range spokes {
		st.Spokes = append(st.Spokes, s.Name)
	}
	gitArgs := []string{"git", "serve", "--root", deploy.GitDataPath, "--addr", fmt.Sprintf(":%d", deploy.GitPort),
		"--health-addr", fmt.Sprintf(":%d", deploy.DefaultHealthPort), "--repo", SampleRepo,
		"--webhook", fmt.Sprintf("http://%s.%s.svc:%d/webhook/git", deploy.PrincipalName, deploy.DefaultNamespace, deploy.DefaultHealthPort)}
	step = opts.Progress.Start("deploy the principal, the Git server and the agents")
	err = applyManifests(ctx, opts, hub, spokes, manifestOptions{image: ref, principalAddr: st.Principal, gitURL: st.GitURL, nodePort: principalNodePort, gitArgs: gitArgs})
	if err == nil {
		err = waitRollout(ctx, opts, hub.Name, deploy.GitName, deploy.PrincipalName)
	}
	step.Done(err)
	if err != nil {
		return nil, err
	}
	// The sample runs the image just loaded into every node: nothing to
	// pull, which an air-gapped kind could not do anyway.
	step = opts.Progress.Start("seed the sample repository")
	err = withGitForward(ctx, wb, hub.Name, func(base string) error {
		return ensureSample(ctx, step, base+"/"+SampleRepo+".git", st.Spokes, sample.TetherWorkload(ref))
	})
	step.Done(err)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// imageBuilder makes tether's image for the kind nodes. Its fields are the
// outside world (the docker CLI, the running binary, the checkout, the Go
// toolchain), so tests can stand in for each.
type imageBuilder struct {
	// docker runs the docker CLI and returns its stdout and stderr.
	docker func(ctx context.Context, args ...string) ([]byte, []byte, error)
	// executable is the running tether (Options.Bin).
	executable string
	// moduleRoot returns tether's checkout, or "" when there is none.
	moduleRoot func() string
	// runnable is image.Runnable, build is image.BuildBinary.
	runnable func(path string, p image.Platform) error
	build    func(ctx context.Context, moduleRoot, pkg, outPath, goos, goarch string) error
	logger   *slog.Logger
}

// buildArchive writes the image to archive and returns its reference.
func (b imageBuilder) buildArchive(ctx context.Context, step progress.Step, work, archive string) (string, error) {
	p, err := b.platform(ctx)
	if err != nil {
		return "", err
	}
	bin, how, err := b.binary(ctx, p, filepath.Join(work, "tether"))
	if err != nil {
		return "", err
	}
	step.Update(p.String() + ", " + how)
	img, err := image.Build(bin, image.Options{Arch: p.Arch, Logger: b.logger})
	if err != nil {
		return "", err
	}
	ref, err := image.Ref(img)
	if err != nil {
		return "", err
	}
	return ref, image.WriteArchive(img, ref, archive)
}

// platform asks the Docker engine which platform its containers, and so
// the kind nodes, run: an arm64 engine (Docker Desktop on Apple silicon,
// say) needs an arm64 image whatever machine builds it.
func (b imageBuilder) platform(ctx context.Context) (image.Platform, error) {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, errOut, err := b.docker(tctx, "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")
	if err != nil {
		why := strings.TrimSpace(string(errOut))
		if why == "" {
			why = err.Error()
		}
		if ctx.Err() != nil {
			return image.Platform{}, ctx.Err()
		}
		return image.Platform{}, fmt.Errorf("ask the Docker engine for its platform (docker version): %s", why)
	}
	p, err := image.ParsePlatform(string(out))
	if err != nil {
		return image.Platform{}, fmt.Errorf("the Docker engine's platform (docker version): %w", err)
	}
	if p.OS != "linux" {
		return image.Platform{}, fmt.Errorf("the Docker engine runs %s containers; kind and tether's image need Linux containers: switch the engine to Linux containers, or use --provider embedded", p.OS)
	}
	return p, nil
}

// binary returns a tether binary for p: the running one when it fits as it
// is, else one cross-compiled from the checkout into out. how says which,
// for the progress line.
func (b imageBuilder) binary(ctx context.Context, p image.Platform, out string) (path, how string, err error) {
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	var why error
	if b.executable != "" {
		if why = b.runnable(b.executable, p); why == nil {
			return b.executable, "the running binary as it is", nil
		}
		b.logger.Debug("the running tether cannot go into the image as it is", "binary", b.executable, "platform", p.String(), "why", why)
	} else {
		why = errors.New("the running binary is unknown")
	}
	if root := b.moduleRoot(); root != "" {
		if err := b.build(ctx, root, image.DefaultPackage, out, p.OS, p.Arch); err != nil {
			return "", "", err
		}
		return out, "built from the checkout at " + root, nil
	}
	advice := "run tether from its checkout (go tool task up), which cross-compiles one"
	if runtime.GOOS == p.OS && runtime.GOARCH == p.Arch {
		advice = "install tether as a static binary (CGO_ENABLED=0 go install " + tetherPackage + "@latest) or " + advice
	}
	return "", "", fmt.Errorf("kind nodes need a static Linux tether for %s: the running binary does not fit (%v), and there is no tether checkout here to build one from; %s", p, why, advice)
}

// tetherPackage is tether's main package, for go install.
const tetherPackage = "github.com/tether-dev/tether/cmd/tether"

func runDocker(ctx context.Context, args ...string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// ensureSample seeds the sample repository at url when it has no sample
// yet and otherwise keeps its commits (sample.Ensure): a second up must not
// undo `tether sample scale` or a scenario's commit.
func ensureSample(ctx context.Context, step progress.Step, url string, spokes []string, w sample.Workload) error {
	head, seeded, err := sample.Ensure(ctx, url, spokes, w, sample.DefaultAuthor)
	if err != nil {
		return err
	}
	if seeded {
		step.Update("seeded at " + repo.ShortSHA(head))
	} else {
		step.Update("kept, at " + repo.ShortSHA(head))
	}
	return nil
}

// moduleRoot finds tether's checkout: given, else the working directory or
// a parent of it; "" when there is none.
func moduleRoot(given string) string {
	dir := given
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return ""
		}
		dir = wd
	}
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/tether-dev/tether\n") {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// rolledOut says whether d's current spec runs and nothing older does. An
// available replica alone is not enough: while a new image rolls out, the
// old pod (Recreate: being deleted) still counts as available for a moment,
// and the Git server's old pod holds the old repository.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas >= want && s.Replicas == s.UpdatedReplicas && s.AvailableReplicas >= want && want >= 1
}

func waitRollout(ctx context.Context, opts Options, clusterName string, names ...string) error {
	cfg, err := opts.Workbench.RESTConfig(clusterName)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for _, n := range names {
		for {
			d, err := cs.AppsV1().Deployments(deploy.DefaultNamespace).Get(ctx, n, metav1.GetOptions{})
			if err == nil && rolledOut(d) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("deployment %s on %s not available after 3m (kubectl --context tether-%s -n %s describe deploy %s)", n, clusterName, clusterName, deploy.DefaultNamespace, n)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// withGitForward port-forwards a local port to the Git server pod on the
// hub (client-go's port-forward, the path kubectl port-forward takes) for
// the duration of fn.
func withGitForward(ctx context.Context, wb *cluster.Workbench, hub string, fn func(base string) error) error {
	base, stop, err := gitForward(ctx, wb, hub)
	if err != nil {
		return err
	}
	defer stop()
	return fn(base)
}

// ReachRepo returns where this machine fetches repoURL: repoURL itself,
// or, for a repository of the workbench's Git server on kind (an address
// on the kind network, which the host may not resolve), the same path
// through a port-forward to the Git server's pod; stop ends it.
func ReachRepo(ctx context.Context, wb *cluster.Workbench, repoURL string) (string, func(), error) {
	noop := func() {}
	st, err := Load(wb)
	if err != nil || st == nil || st.Provider != cluster.ProviderKind {
		return repoURL, noop, err
	}
	want, err1 := url.Parse(st.GitURL)
	got, err2 := url.Parse(repoURL)
	if err1 != nil || err2 != nil || want.Host != got.Host {
		return repoURL, noop, nil
	}
	clusters, err := wb.Clusters()
	if err != nil || len(clusters) == 0 {
		return "", noop, fmt.Errorf("no hub to reach the Git server on: %v", err)
	}
	base, stop, err := gitForward(ctx, wb, clusters[0].Name)
	if err != nil {
		return "", noop, err
	}
	return base + got.Path, stop, nil
}

// gitForward port-forwards a local port to the Git server's pod on the hub
// and returns its base URL.
func gitForward(ctx context.Context, wb *cluster.Workbench, hub string) (string, func(), error) {
	cfg, err := wb.RESTConfig(hub)
	if err != nil {
		return "", nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	pods, err := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + deploy.GitName})
	if err != nil {
		return "", nil, err
	}
	pod := servingPod(pods.Items)
	if pod == "" {
		return "", nil, fmt.Errorf("no running, ready Git server pod on %s (kubectl --context tether-%s -n %s get pods -l app.kubernetes.io/name=%s)", hub, hub, deploy.DefaultNamespace, deploy.GitName)
	}
	local, stop, err := portForward(ctx, cfg, deploy.DefaultNamespace, pod, int(deploy.GitPort))
	if err != nil {
		return "", nil, err
	}
	return "http://" + local, stop, nil
}

// servingPod picks a pod that serves: running, ready and not being
// deleted. A terminating pod of an earlier rollout may still be listed.
func servingPod(pods []corev1.Pod) string {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p.Name
			}
		}
	}
	return ""
}

func portForward(ctx context.Context, cfg *rest.Config, ns, pod string, port int) (string, func(), error) {
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", nil, err
	}
	u.Path = fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, pod)
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	localPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	stopCh, readyCh := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("%d:%d", localPort, port)}, stopCh, readyCh, io.Discard, io.Discard)
	if err != nil {
		return "", nil, err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- fw.ForwardPorts() }()
	select {
	case <-readyCh:
	case err := <-errCh:
		return "", nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	case <-ctx.Done():
		close(stopCh)
		return "", nil, ctx.Err()
	}
	return fmt.Sprintf("127.0.0.1:%d", localPort), func() { close(stopCh) }, nil
}
