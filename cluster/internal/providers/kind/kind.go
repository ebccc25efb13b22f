package kind

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/constants"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/progress"
)

const (
	// providerName is the --provider flag value.
	providerName = "kind"
	// namePrefix keeps tether's kind clusters apart from the user's own;
	// the workbench id after it keeps workbenches apart from each other.
	namePrefix = "tether-"
	// controlPlaneSuffix is what kind appends to make the control-plane
	// node's container name, which is also its hostname and Kubernetes node
	// name: the whole must fit a DNS label (63 characters).
	controlPlaneSuffix = "-control-plane"
	// NodeImage is kind's own default node image: its Kubernetes minor
	// matches tether's client-go, and kind has tested it with this release.
	NodeImage = defaults.Image
	// waitForReady bounds how long creation waits for the control plane.
	waitForReady = 3 * time.Minute
	// reattachWait bounds how long reattaching waits for /readyz: a node
	// that `docker start` just started boots systemd, containerd, the
	// kubelet and then the static control-plane pods.
	reattachWait = 3 * time.Minute
	// staleLockAge is when kind's kubeconfig lock is taken to be left by a
	// killed tether: kind holds it for milliseconds while it writes.
	staleLockAge = 2 * time.Minute
	// engineTimeout bounds the Docker engine check: a hung engine must not
	// hang tether.
	engineTimeout = 10 * time.Second
	// apiServerInternalPort is where the API server listens inside the node
	// container, as seen from the kind network.
	apiServerInternalPort = 6443
)

// createRequest is what the provider asks of kind's Create. It is a plain
// struct rather than kind's opaque CreateOptions so tests can see it.
type createRequest struct {
	Config *v1alpha4.Cluster
	Image  string
	Wait   time.Duration
	// KubeconfigPath is where kind writes its kubeconfig, so it never
	// touches the user's.
	KubeconfigPath string
}

// kindLib is the part of kind's library the provider uses; tests fake it.
type kindLib interface {
	Create(name string, req createRequest) error
	Delete(name, kubeconfigPath string) error
	KubeConfig(name string, internal bool) (string, error)
	ListInternalNodes(name string) ([]nodes.Node, error)
	List() ([]string, error)
}

// runFunc runs a program and returns its stdout and stderr; tests fake it.
type runFunc func(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)

// Provider makes kind clusters. It is safe for concurrent use on different
// clusters: clusters are created in parallel.
type Provider struct {
	env  providers.Env
	lib  kindLib
	run  runFunc
	log  *slog.Logger
	prog progress.Reporter
	now  func() time.Time
	// prefix is "tether-<workbench id>-": every kind cluster of this
	// workbench, and only those, starts with it.
	prefix string
	// images is tether's offline-built node image; tests fake it.
	images nodeImages
	// readyz asks an API server's /readyz through a kubeconfig; tests fake it.
	readyz func(ctx context.Context, kubeconfig []byte) error
	// reattachWait and pollEvery bound and pace waiting for /readyz.
	reattachWait, pollEvery time.Duration
	// goos and readFile are what doctor looks at; tests fake them.
	goos     string
	readFile func(string) ([]byte, error)

	// The node image is chosen once per provider, under imageMu, although
	// clusters are created in parallel: the first create pulls or builds
	// it, the others wait for that and use the same image.
	imageMu     sync.Mutex
	imageDone   bool
	image       string
	imageErr    error
	imageChosen bool // imageDone with an image the provider picked (not the user)
}

var (
	_ providers.Provider    = (*Provider)(nil)
	_ providers.Sweeper     = (*Provider)(nil)
	_ providers.ImageLoader = (*Provider)(nil)
)

// New returns a provider that drives kind's library against Docker.
func New(env providers.Env) *Provider {
	log := loggerOf(env)
	lib := realKind{p: kindcluster.NewProvider(
		kindcluster.ProviderWithDocker(),
		kindcluster.ProviderWithLogger(newLogAdapter(log.With("component", "kind"))),
	)}
	return newProvider(env, lib, runCommand)
}

func newProvider(env providers.Env, lib kindLib, run runFunc) *Provider {
	prog := env.Progress
	if prog == nil {
		prog = progress.Discard()
	}
	return &Provider{
		env: env, lib: lib, run: run, log: loggerOf(env), prog: prog, now: time.Now,
		prefix:       namePrefix + workbenchID(env.StateDir) + "-",
		images:       offlineImages{},
		readyz:       readyz,
		reattachWait: reattachWait,
		pollEvery:    time.Second,
		goos:         runtime.GOOS,
		readFile:     os.ReadFile,
	}
}

func loggerOf(env providers.Env) *slog.Logger {
	if env.Log != nil {
		return env.Log
	}
	return slog.New(slog.DiscardHandler)
}

// workbenchID is a short, stable id of the workbench: 6 hex digits of the
// SHA-256 of its absolute state folder. Two workbenches (a developer's and
// the kind e2e suite's, say) never share a state folder, so they never share
// kind cluster names and neither adopts nor deletes the other's clusters.
// It is derived rather than recorded so that `down` still finds every
// cluster when the state file is gone or damaged. Symlinks are resolved so
// that two spellings of one folder are one workbench.
func workbenchID(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = filepath.Clean(stateDir)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:3])
}

// ClusterName is the kind cluster name of a tether cluster of this
// workbench: tether-<workbench id>-<name>.
func (p *Provider) ClusterName(name string) string { return p.prefix + name }

// legacyName is what tethers before workbench ids called the cluster. Such
// a cluster may belong to any workbench, so it is never adopted.
func legacyName(name string) string { return namePrefix + name }

// Name returns "kind".
func (p *Provider) Name() string { return providerName }

// Traits implements providers.Provider: real nodes with an image store,
// so tether's components run as pods of its own image, and Services are
// reached as on any cluster with kube-proxy.
func (p *Provider) Traits() providers.Traits {
	return providers.Traits{RunsContainers: true}
}

// Preflight checks that a Docker engine answers.
func (p *Provider) Preflight(ctx context.Context) error {
	return engineAnswers(ctx, p.run, engineTimeout)
}

// EngineAnswers returns nil when a Docker engine, not just the docker
// client, answers; otherwise an error saying what to do. The workbench uses
// it to choose between the kind and embedded providers.
func EngineAnswers(ctx context.Context) error {
	return engineAnswers(ctx, runCommand, engineTimeout)
}

func engineAnswers(ctx context.Context, run runFunc, timeout time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stdout, stderr, err := run(tctx, "docker", "version", "--format", "{{.Server.Version}}")
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return &EngineError{Missing: true}
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("check for a Docker engine: %w", ctx.Err())
	case err != nil && tctx.Err() != nil:
		return &EngineError{Answer: fmt.Sprintf("no answer within %s", timeout)}
	case err != nil:
		why := firstLine(stderr)
		if why == "" {
			why = err.Error()
		}
		return &EngineError{Answer: why}
	case strings.TrimSpace(string(stdout)) == "":
		return &EngineError{Answer: "no server version"}
	}
	return nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

func runCommand(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// dir is the cluster's folder. It is always derived from the state folder,
// never taken from a recorded state, so a damaged state file cannot make
// Delete remove an unrelated folder.
func (p *Provider) dir(name string) string {
	return filepath.Join(p.env.StateDir, "clusters", name)
}

// kindKubeconfig is the private file kind writes instead of ~/.kube/config.
func (p *Provider) kindKubeconfig(name string) string {
	return filepath.Join(p.dir(name), "kind.kubeconfig")
}

func (p *Provider) adminKubeconfig(name string) string {
	return filepath.Join(p.dir(name), "admin.kubeconfig")
}

// kubeletNoFailCgroupV1 lets the kubelet run on a cgroup v1 host (older CI
// runners and distributions), which kubelets from Kubernetes 1.35 refuse
// unless failCgroupV1 is false. It is set whatever the image, kind's own
// included: on a cgroup v2 host the field changes nothing, and a kubelet
// older than the field (1.31) decodes its configuration leniently and only
// warns about it.
const kubeletNoFailCgroupV1 = "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nfailCgroupV1: false\n"

// clusterConfig is the kind configuration of a tether cluster: one
// control-plane node on the chosen node image, API server on loopback so it
// is not exposed to the network.
func clusterConfig(kindName string, spec providers.Spec, image string) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta:             v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:                 kindName,
		Nodes:                []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: image}},
		KubeadmConfigPatches: []string{kubeletNoFailCgroupV1},
	}
	cfg.Networking.APIServerAddress = "127.0.0.1"
	if spec.APIServerPort != 0 {
		cfg.Networking.APIServerPort = int32(spec.APIServerPort)
	}
	if isTetherImage(image) {
		// tether's node image bakes its own CNI configuration in;
		// kindnetd, kind's default CNI, is an image that cannot be had
		// offline.
		cfg.Networking.DisableDefaultCNI = true
	}
	return cfg
}

// Ensure creates the kind cluster, or reattaches to it when it exists.
func (p *Provider) Ensure(ctx context.Context, spec providers.Spec, prev *state.Cluster) (*state.Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := p.ClusterName(spec.Name)
	if n := len(name) + len(controlPlaneSuffix); n > validation.DNS1123LabelMaxLength {
		return nil, fmt.Errorf("kind cluster %q: its node name %s%s would be %d characters, more than the %d a host name may have: choose a shorter cluster name", name, name, controlPlaneSuffix, n, validation.DNS1123LabelMaxLength)
	}
	dir := p.dir(spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create folder for kind cluster %q: %w", name, err)
	}
	names, err := p.list()
	if err != nil {
		return nil, err
	}
	exists := slices.Contains(names, name)
	if !exists && slices.Contains(names, legacyName(spec.Name)) {
		p.log.Warn("a kind cluster made by an older tether is not adopted: it may belong to another workbench; delete it with `kind delete cluster --name "+legacyName(spec.Name)+"` if it is this one's",
			"cluster", legacyName(spec.Name), "creating", name)
	}
	created := p.now()
	var kubeconfig string
	if exists {
		p.log.Info("reattaching to kind cluster", "cluster", name)
		kubeconfig, err = p.reattach(ctx, name, spec.Name)
		switch {
		case err == nil:
			if prev != nil && !prev.Created.IsZero() {
				created = prev.Created
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case prev != nil:
			// The record says an earlier up finished this cluster: it may
			// hold the user's work, so it is not recreated unasked.
			return nil, &RepairError{Err: err, Down: true, Up: true}
		default:
			// Not in the record, so no up finished it: an up interrupted
			// mid-create (Ctrl-C, a killed terminal) left it. Repair it.
			if rerr := p.recreateUnfinished(name, spec.Name, err); rerr != nil {
				return nil, rerr
			}
			exists = false
		}
	}
	if !exists {
		if err := p.create(ctx, name, spec); err != nil {
			return nil, err
		}
		if kubeconfig, err = p.kubeconfig(name, spec.Name); err != nil {
			return nil, err
		}
	}
	endpoint, err := serverOf([]byte(kubeconfig))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of kind cluster %q: %w", name, err)
	}
	admin := p.adminKubeconfig(spec.Name)
	if err := writePrivate(admin, []byte(kubeconfig)); err != nil {
		return nil, fmt.Errorf("write kubeconfig of kind cluster %q: %w", name, err)
	}
	internal, err := p.internalEndpoint(name)
	if err != nil {
		return nil, err
	}
	return &state.Cluster{
		Name:             spec.Name,
		Role:             spec.Role,
		Provider:         providerName,
		Endpoint:         endpoint,
		InternalEndpoint: internal,
		Kubeconfig:       admin,
		Dir:              dir,
		Created:          created,
	}, nil
}

// reattach starts the cluster's stopped nodes, reads its kubeconfig and
// waits until its API server is ready. An error means the cluster cannot be
// used as it is.
func (p *Provider) reattach(ctx context.Context, name, short string) (string, error) {
	started, err := p.startStopped(ctx, name)
	if err != nil {
		return "", err
	}
	kubeconfig, err := p.kubeconfig(name, short)
	if err != nil {
		// kind reads it from the node, where kubeadm writes it: a create
		// that never got that far leaves none.
		return "", err
	}
	if err := p.waitReady(ctx, name, []byte(kubeconfig), started); err != nil {
		return "", err
	}
	return kubeconfig, nil
}

// recreateUnfinished deletes a cluster an interrupted up left, saying so,
// so that Ensure creates it afresh.
func (p *Provider) recreateUnfinished(name, short string, why error) (err error) {
	step := p.prog.Start(fmt.Sprintf("kind cluster %s was never finished (%v): deleting it and creating it again", name, why))
	defer func() { step.Done(err) }()
	if err := p.deleteKind(name, short); err != nil {
		return fmt.Errorf("delete unfinished kind cluster %q: %w", name, err)
	}
	return nil
}

func (p *Provider) kubeconfig(name, short string) (string, error) {
	p.removeStaleLock(p.kindKubeconfig(short))
	kubeconfig, err := p.lib.KubeConfig(name, false)
	if err != nil {
		return "", fmt.Errorf("read kubeconfig of kind cluster %q: %w", name, err)
	}
	return kubeconfig, nil
}

// waitReady polls the API server's /readyz through the cluster's admin
// kubeconfig until it answers ok, for at most p.reattachWait. A cluster
// whose nodes were just started gets a progress step at once; one that
// was running gets it only if it does not answer at the first try.
func (p *Provider) waitReady(ctx context.Context, name string, kubeconfig []byte, started bool) error {
	title := "wait for the API server of kind cluster " + name
	var step progress.Step
	if started {
		step = p.prog.Start(title)
	}
	wctx, cancel := context.WithTimeout(ctx, p.reattachWait)
	defer cancel()
	begin := time.Now()
	for {
		err := p.readyz(wctx, kubeconfig)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			err = ctx.Err()
		case wctx.Err() != nil:
			err = fmt.Errorf("the API server of kind cluster %q did not answer /readyz within %s (last: %v)", name, p.reattachWait, err)
		default:
			if step == nil {
				step = p.prog.Start(title)
			}
			step.Update(fmt.Sprintf("not ready after %s: %v", time.Since(begin).Round(time.Second), err))
			select {
			case <-wctx.Done():
			case <-time.After(p.pollEvery):
			}
			continue
		}
		if step != nil {
			step.Done(err)
		}
		return err
	}
}

// readyz asks the API server's /readyz with client-go's REST client, as
// kubectl get --raw /readyz would.
func readyz(ctx context.Context, kubeconfig []byte) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return fmt.Errorf("parse kubeconfig: %w", err)
	}
	cfg.Timeout = 5 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = dc.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// removeStaleLock removes the <kubeconfig>.lock kind creates while it
// writes that kubeconfig, when it is older than staleLockAge: a tether
// killed mid-write leaves it behind, and kind then refuses to write the
// file, which fails the whole create.
func (p *Provider) removeStaleLock(kubeconfigPath string) {
	lock := kubeconfigPath + ".lock"
	fi, err := os.Stat(lock)
	if err != nil {
		return
	}
	age := p.now().Sub(fi.ModTime())
	if age < staleLockAge {
		return
	}
	if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
		p.log.Warn("could not remove a stale kind kubeconfig lock", "lock", lock, "age", age.Round(time.Second), "err", err)
		return
	}
	p.log.Warn("removed a stale kind kubeconfig lock (left by an interrupted tether)", "lock", lock, "age", age.Round(time.Second))
}

func (p *Provider) list() ([]string, error) {
	names, err := p.lib.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters (is Docker running?): %w", err)
	}
	return names, nil
}

func (p *Provider) exists(name string) (bool, error) {
	names, err := p.list()
	if err != nil {
		return false, err
	}
	return slices.Contains(names, name), nil
}

// create makes the cluster and, if that fails, removes what was made so the
// next `tether up` starts clean instead of tripping over a half-made node.
func (p *Provider) create(ctx context.Context, name string, spec providers.Spec) (err error) {
	image, err := p.NodeImage(ctx)
	if err != nil {
		return fmt.Errorf("create kind cluster %q: %w", name, err)
	}
	step := p.prog.Start("create kind cluster " + name)
	defer func() { step.Done(err) }()
	private := p.kindKubeconfig(spec.Name)
	p.removeStaleLock(private)
	req := createRequest{
		Config:         clusterConfig(name, spec, image),
		Image:          image,
		Wait:           waitForReady,
		KubeconfigPath: private,
	}
	if cerr := p.lib.Create(name, req); cerr != nil {
		if derr := p.lib.Delete(name, private); derr != nil {
			p.log.Warn("could not remove half-made kind cluster", "cluster", name, "err", derr)
			return &RepairError{Err: fmt.Errorf("create kind cluster %q: %w (removing what was made also failed: %v)", name, cerr, derr), Down: true}
		}
		return fmt.Errorf("create kind cluster %q: %w", name, cerr)
	}
	return nil
}

// startStopped starts node containers that are stopped, e.g. after the
// machine rebooted, so reattaching repairs the cluster instead of failing.
// It reports whether it started any.
func (p *Provider) startStopped(ctx context.Context, name string) (started bool, err error) {
	ns, err := p.lib.ListInternalNodes(name)
	if err != nil {
		return false, fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	for _, n := range ns {
		running, err := p.running(ctx, n.String())
		if err != nil || running {
			continue // inspect failures surface later, when the API is checked
		}
		step := p.prog.Start("start kind node " + n.String())
		_, stderr, err := p.run(ctx, "docker", "start", n.String())
		if err != nil {
			err = fmt.Errorf("start node container %s of kind cluster %q (%s): %w", n, name, firstLine(stderr), err)
		}
		step.Done(err)
		if err != nil {
			return started, err
		}
		started = true
	}
	return started, nil
}

func (p *Provider) running(ctx context.Context, container string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	out, _, err := p.run(ctx, "docker", "inspect", "--format", "{{.State.Running}}", container)
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(out)) == "true", nil
}

func serverOf(kubeconfig []byte) (string, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return "", fmt.Errorf("parse: %w", err)
	}
	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return "", fmt.Errorf("current context %q is missing", cfg.CurrentContext)
	}
	c, ok := cfg.Clusters[kctx.Cluster]
	if !ok || c.Server == "" {
		return "", fmt.Errorf("cluster %q has no server", kctx.Cluster)
	}
	return c.Server, nil
}

// internalEndpoint is the API server URL on the kind network, as the other
// clusters reach it: the control-plane container's name, which Docker's DNS
// resolves on the kind network (kind's node entrypoint makes that DNS
// answer pods too). Unlike the node's IP, which Docker may hand out anew
// when the container restarts, the name stays. The API server certificate
// is valid for it without a certSANs patch: kind makes the container name
// both the node name and the controlPlaneEndpoint host, and kubeadm puts
// both into the certificate (kind's own `get kubeconfig --internal` relies
// on it).
func (p *Provider) internalEndpoint(name string) (string, error) {
	n, err := p.controlPlane(name)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("https://%s:%d", n.String(), apiServerInternalPort), nil
}

func (p *Provider) controlPlane(name string) (nodes.Node, error) {
	ns, err := p.lib.ListInternalNodes(name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	if len(ns) == 0 {
		return nil, &RepairError{Err: fmt.Errorf("kind cluster %q has no nodes", name), Down: true, Up: true}
	}
	for _, n := range ns {
		if role, err := n.Role(); err == nil && role == constants.ControlPlaneNodeRoleValue {
			return n, nil
		}
	}
	return ns[0], nil
}

// writePrivate writes a file readable only by the user, replacing it
// atomically so a reader never sees half a kubeconfig.
func writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Delete removes the kind cluster and its folder.
func (p *Provider) Delete(ctx context.Context, c state.Cluster) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := p.ClusterName(c.Name)
	exists, err := p.exists(name)
	if err != nil {
		return err
	}
	if exists {
		step := p.prog.Start("delete kind cluster " + name)
		err := p.deleteKind(name, c.Name)
		step.Done(err)
		if err != nil {
			return err
		}
	}
	if err := os.RemoveAll(p.dir(c.Name)); err != nil {
		return fmt.Errorf("remove folder of kind cluster %q: %w", name, err)
	}
	return nil
}

func (p *Provider) deleteKind(name, short string) error {
	private := p.kindKubeconfig(short)
	p.removeStaleLock(private)
	if err := p.lib.Delete(name, private); err != nil {
		return fmt.Errorf("delete kind cluster %q: %w", name, err)
	}
	return nil
}

// Sweep deletes every kind cluster whose name carries this workbench's
// prefix, except those named in keep, whether the record lists them or
// not: an up interrupted mid-create leaves node containers that only their
// names tie to the workbench. It returns the tether names it deleted.
func (p *Provider) Sweep(ctx context.Context, keep []string) ([]string, error) {
	names, err := p.list()
	if err != nil {
		return nil, err
	}
	var swept []string
	var errs []error
	for _, name := range names {
		short, ok := strings.CutPrefix(name, p.prefix)
		if !ok || slices.Contains(keep, short) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return swept, err
		}
		// kind names allow '.', so a name is only used for a path below
		// the state folder when it is one a tether cluster could have.
		if len(validation.IsDNS1123Label(short)) > 0 {
			short = ".swept"
		}
		step := p.prog.Start(fmt.Sprintf("delete kind cluster %s (left by an interrupted up)", name))
		err := p.deleteKind(name, short)
		step.Done(err)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		swept = append(swept, short)
		if short != ".swept" {
			if err := os.RemoveAll(p.dir(short)); err != nil {
				errs = append(errs, fmt.Errorf("remove folder of kind cluster %q: %w", name, err))
			}
		}
	}
	return swept, errors.Join(errs...)
}

// Problems reports a cluster whose containers are gone or stopped.
func (p *Provider) Problems(ctx context.Context, c state.Cluster) []string {
	name := p.ClusterName(c.Name)
	exists, err := p.exists(name)
	if err != nil {
		return []string{err.Error()}
	}
	if !exists {
		return []string{fmt.Sprintf("kind cluster %s no longer exists (run tether up)", name)}
	}
	ns, err := p.lib.ListInternalNodes(name)
	if err != nil {
		return []string{fmt.Sprintf("list nodes of kind cluster %s: %v", name, err)}
	}
	var problems []string
	for _, n := range ns {
		if running, err := p.running(ctx, n.String()); err == nil && !running {
			problems = append(problems, fmt.Sprintf("node container %s is not running (run tether up)", n))
		}
	}
	return problems
}

// LoadImageArchive loads an image tarball (docker save or OCI layout) into
// every node of the named tether cluster, so pods can use images that were
// built locally and never pushed.
func (p *Provider) LoadImageArchive(ctx context.Context, clusterName, archivePath string) error {
	name := p.ClusterName(clusterName)
	if _, err := os.Stat(archivePath); err != nil {
		return fmt.Errorf("image archive for kind cluster %q: %w", name, err)
	}
	ns, err := p.lib.ListInternalNodes(name)
	if err != nil {
		return fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	if len(ns) == 0 {
		return &RepairError{Err: fmt.Errorf("kind cluster %q has no nodes to load %s into", name, archivePath), Up: true}
	}
	for _, n := range ns {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := loadInto(n, archivePath); err != nil {
			return fmt.Errorf("load image archive %s into node %s of kind cluster %q: %w", archivePath, n, name, err)
		}
	}
	return nil
}

// loadInto opens the archive afresh because each node consumes the reader.
func loadInto(n nodes.Node, archivePath string) error {
	f, err := os.Open(archivePath)
	if err != nil {
		return err
	}
	defer f.Close()
	return nodeutils.LoadImageArchive(n, f)
}

// InternalKubeconfig returns the kubeconfig of the named tether cluster as
// seen from inside the kind network (server = the control-plane container),
// for components that run in the clusters themselves.
func (p *Provider) InternalKubeconfig(name string) ([]byte, error) {
	kc, err := p.lib.KubeConfig(p.ClusterName(name), true)
	if err != nil {
		return nil, fmt.Errorf("read internal kubeconfig of kind cluster %q: %w", p.ClusterName(name), err)
	}
	return []byte(kc), nil
}

// realKind is kindLib backed by kind's library.
type realKind struct {
	p *kindcluster.Provider
}

func (r realKind) Create(name string, req createRequest) error {
	return r.p.Create(name,
		kindcluster.CreateWithV1Alpha4Config(req.Config),
		kindcluster.CreateWithNodeImage(req.Image),
		kindcluster.CreateWithWaitForReady(req.Wait),
		kindcluster.CreateWithKubeconfigPath(req.KubeconfigPath),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	)
}

func (r realKind) Delete(name, kubeconfigPath string) error {
	return r.p.Delete(name, kubeconfigPath)
}

func (r realKind) KubeConfig(name string, internal bool) (string, error) {
	return r.p.KubeConfig(name, internal)
}

func (r realKind) ListInternalNodes(name string) ([]nodes.Node, error) {
	return r.p.ListInternalNodes(name)
}

func (r realKind) List() ([]string, error) { return r.p.List() }

// EngineError says no Docker engine answers: Missing when the docker
// command is not installed, else Answer is what `docker version` said.
type EngineError struct {
	Missing bool
	Answer  string
}

func (e *EngineError) Error() string {
	if e.Missing {
		return "docker is not installed: install Docker Engine or Docker Desktop"
	}
	return fmt.Sprintf("no Docker engine answers (docker version: %s): start Docker", e.Answer)
}

// NodeImageError says the kind provider has no node image it can use:
// the configured one (kind.nodeImage) or kind's cannot be had.
type NodeImageError struct{ Err error }

func (e *NodeImageError) Error() string { return e.Err.Error() }
func (e *NodeImageError) Unwrap() error { return e.Err }

// RepairError says a kind cluster is not as the workbench needs it: Down
// says what is left of it is to be removed, Up that it is to be made
// (again); both, that it is to be made anew.
type RepairError struct {
	Err      error
	Down, Up bool
}

func (e *RepairError) Error() string { return e.Err.Error() }
func (e *RepairError) Unwrap() error { return e.Err }
