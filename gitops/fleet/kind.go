package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/image"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/sample"
)

// NodePorts on the hub node: spokes reach the principal and the Git server
// through the hub node's address on the kind network.
const (
	principalNodePort int32 = 30443
	gitNodePort       int32 = 30444
)

// upKind builds tether's image (no daemon, no Dockerfile), loads it into
// every node, deploys the components as pods, and seeds the sample
// repository through a port-forward to the Git server pod.
func upKind(ctx context.Context, opts Options, hub cluster.Cluster, spokes []cluster.Cluster) (*State, error) {
	wb := opts.Workbench
	hubIP := hostOf(hub.InternalEndpoint)
	if hubIP == "" {
		return nil, fmt.Errorf("the hub %q has no address on the kind network recorded: run `tether down` and `tether up` again", hub.Name)
	}
	root, err := moduleRoot(opts.ModuleRoot)
	if err != nil {
		return nil, err
	}
	step := opts.Progress.Start("build tether's image (linux/" + runtime.GOARCH + ", no Docker daemon)")
	work := filepath.Join(dir(wb), "image")
	if err := os.MkdirAll(work, 0o700); err != nil {
		step.Done(err)
		return nil, err
	}
	bin := filepath.Join(work, "tether")
	archive := filepath.Join(work, "tether.tar")
	var ref string
	err = image.BuildBinary(ctx, root, image.DefaultPackage, bin, "linux", runtime.GOARCH)
	if err == nil {
		img, berr := image.Build(bin, image.Options{Arch: runtime.GOARCH})
		if berr == nil {
			if ref, berr = image.Ref(img); berr == nil {
				berr = image.WriteArchive(img, ref, archive)
			}
		}
		err = berr
	}
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
		GitURL:    fmt.Sprintf("http://%s:%d/%s.git", hubIP, gitNodePort, SampleRepo),
		Principal: fmt.Sprintf("%s:%d", hubIP, principalNodePort),
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
	step = opts.Progress.Start("seed the sample repository")
	err = withGitForward(ctx, wb, hub.Name, func(base string) error {
		_, err := sample.Seed(ctx, base+"/"+SampleRepo+".git", st.Spokes, sample.DefaultAuthor)
		return err
	})
	step.Done(err)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// moduleRoot finds tether's checkout: the image is built from source.
func moduleRoot(given string) (string, error) {
	dir := given
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dir = wd
	}
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/tether-dev/tether\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", errors.New("the kind provider builds tether's image from source: run tether from its checkout (go tool task up)")
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
			if err == nil && d.Status.AvailableReplicas >= 1 && d.Status.ObservedGeneration >= d.Generation {
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
	cfg, err := wb.RESTConfig(hub)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	pods, err := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + deploy.GitName})
	if err != nil {
		return err
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("no Git server pod on %s", hub)
	}
	local, stop, err := portForward(ctx, cfg, deploy.DefaultNamespace, pods.Items[0].Name, int(deploy.GitPort))
	if err != nil {
		return err
	}
	defer stop()
	return fn("http://" + local)
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
