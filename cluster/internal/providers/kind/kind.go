package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
	// namePrefix keeps tether's kind clusters apart from the user's own.
	namePrefix = "tether-"
	// NodeImage is kind's own default node image: its Kubernetes minor
	// matches tether's client-go, and kind has tested it with this release.
	NodeImage = defaults.Image
	// waitForReady bounds how long creation waits for the control plane.
	waitForReady = 3 * time.Minute
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
}

var _ providers.Provider = (*Provider)(nil)

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
	return &Provider{env: env, lib: lib, run: run, log: loggerOf(env), prog: prog, now: time.Now}
}

func loggerOf(env providers.Env) *slog.Logger {
	if env.Log != nil {
		return env.Log
	}
	return slog.New(slog.DiscardHandler)
}

// ClusterName is the kind cluster name of a tether cluster.
func ClusterName(name string) string { return namePrefix + name }

// Name returns "kind".
func (p *Provider) Name() string { return providerName }

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
		return errors.New("docker is not installed: install Docker Engine or Docker Desktop, or use --provider embedded")
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("check for a Docker engine: %w", ctx.Err())
	case err != nil && tctx.Err() != nil:
		return fmt.Errorf("no Docker engine answers (docker version: no answer within %s): start Docker, or use --provider embedded", timeout)
	case err != nil:
		why := firstLine(stderr)
		if why == "" {
			why = err.Error()
		}
		return fmt.Errorf("no Docker engine answers (docker version: %s): start Docker, or use --provider embedded", why)
	case strings.TrimSpace(string(stdout)) == "":
		return errors.New("no Docker engine answers (docker version: no server version): start Docker, or use --provider embedded")
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

// clusterConfig is the kind configuration of a tether cluster: one
// control-plane node, API server on loopback so it is not exposed to the
// network.
func clusterConfig(kindName string, spec providers.Spec) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     kindName,
		Nodes:    []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: NodeImage}},
	}
	cfg.Networking.APIServerAddress = "127.0.0.1"
	if spec.APIServerPort != 0 {
		cfg.Networking.APIServerPort = int32(spec.APIServerPort)
	}
	return cfg
}

// Ensure creates the kind cluster, or reattaches to it when it exists.
func (p *Provider) Ensure(ctx context.Context, spec providers.Spec, prev *state.Cluster) (*state.Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := ClusterName(spec.Name)
	dir := p.dir(spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create folder for kind cluster %q: %w", name, err)
	}
	exists, err := p.exists(name)
	if err != nil {
		return nil, err
	}
	created := p.now()
	if exists {
		p.log.Info("reattaching to kind cluster", "cluster", name)
		if prev != nil && !prev.Created.IsZero() {
			created = prev.Created
		}
		if err := p.startStopped(ctx, name); err != nil {
			return nil, err
		}
	} else if err := p.create(name, spec); err != nil {
		return nil, err
	}

	kubeconfig, err := p.lib.KubeConfig(name, false)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig of kind cluster %q: %w", name, err)
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

func (p *Provider) exists(name string) (bool, error) {
	names, err := p.lib.List()
	if err != nil {
		return false, fmt.Errorf("list kind clusters (is Docker running?): %w", err)
	}
	return slices.Contains(names, name), nil
}

// create makes the cluster and, if that fails, removes what was made so the
// next `tether up` starts clean instead of tripping over a half-made node.
func (p *Provider) create(name string, spec providers.Spec) (err error) {
	step := p.prog.Start("create kind cluster " + name)
	defer func() { step.Done(err) }()
	private := p.kindKubeconfig(spec.Name)
	req := createRequest{
		Config:         clusterConfig(name, spec),
		Image:          NodeImage,
		Wait:           waitForReady,
		KubeconfigPath: private,
	}
	if cerr := p.lib.Create(name, req); cerr != nil {
		if derr := p.lib.Delete(name, private); derr != nil {
			p.log.Warn("could not remove half-made kind cluster", "cluster", name, "err", derr)
			return fmt.Errorf("create kind cluster %q: %w (removing what was made also failed: %v; run tether down)", name, cerr, derr)
		}
		return fmt.Errorf("create kind cluster %q: %w", name, cerr)
	}
	return nil
}

// startStopped starts node containers that are stopped, e.g. after the
// machine rebooted, so reattaching repairs the cluster instead of failing.
func (p *Provider) startStopped(ctx context.Context, name string) error {
	ns, err := p.lib.ListInternalNodes(name)
	if err != nil {
		return fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	for _, n := range ns {
		running, err := p.running(ctx, n.String())
		if err != nil || running {
			continue // inspect failures surface later, when the API is checked
		}
		step := p.prog.Start("start kind node " + n.String())
		_, stderr, err := p.run(ctx, "docker", "start", n.String())
		if err != nil {
			err = fmt.Errorf("start node container %s of kind cluster %q (%s): %w; run tether down, then tether up", n, name, firstLine(stderr), err)
		}
		step.Done(err)
		if err != nil {
			return err
		}
	}
	return nil
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

// internalEndpoint is the API server URL on the kind network: the hub's
// address for spokes, which cannot reach the host's loopback port.
func (p *Provider) internalEndpoint(name string) (string, error) {
	n, err := p.controlPlane(name)
	if err != nil {
		return "", err
	}
	ipv4, _, err := n.IP()
	if err != nil {
		return "", fmt.Errorf("address of node %s of kind cluster %q: %w", n, name, err)
	}
	if ipv4 == "" {
		return "", fmt.Errorf("node %s of kind cluster %q has no IPv4 address on the kind network; run tether down, then tether up", n, name)
	}
	return fmt.Sprintf("https://%s:%d", ipv4, apiServerInternalPort), nil
}

func (p *Provider) controlPlane(name string) (nodes.Node, error) {
	ns, err := p.lib.ListInternalNodes(name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("kind cluster %q has no nodes; run tether down, then tether up", name)
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
	name := ClusterName(c.Name)
	exists, err := p.exists(name)
	if err != nil {
		return err
	}
	if exists {
		step := p.prog.Start("delete kind cluster " + name)
		err := p.lib.Delete(name, p.kindKubeconfig(c.Name))
		if err != nil {
			err = fmt.Errorf("delete kind cluster %q: %w", name, err)
		}
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

// Problems reports a cluster whose containers are gone or stopped.
func (p *Provider) Problems(ctx context.Context, c state.Cluster) []string {
	name := ClusterName(c.Name)
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
	name := ClusterName(clusterName)
	if _, err := os.Stat(archivePath); err != nil {
		return fmt.Errorf("image archive for kind cluster %q: %w", name, err)
	}
	ns, err := p.lib.ListInternalNodes(name)
	if err != nil {
		return fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	if len(ns) == 0 {
		return fmt.Errorf("kind cluster %q has no nodes to load %s into; run tether up", name, archivePath)
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
	kc, err := p.lib.KubeConfig(ClusterName(name), true)
	if err != nil {
		return nil, fmt.Errorf("read internal kubeconfig of kind cluster %q: %w", ClusterName(name), err)
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
