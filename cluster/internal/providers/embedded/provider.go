package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/pki"
)

// Name is the provider's flag value.
const Name = "embedded"

// serviceCIDR is the same on every embedded cluster: they never share a
// network, and a fixed range keeps addresses predictable in docs and tests.
const serviceCIDR = "10.96.0.0/16"

// Provider runs embedded clusters.
type Provider struct {
	env     providers.Env
	builder *Builder
	// bins is resolved once per Provider: every cluster of one `up` uses the
	// same build.
	binsOnce sync.Once
	bins     Binaries
	binsErr  error

	// handed holds every port this Provider has given a cluster. Clusters
	// start in parallel and a port is free between choosing it and the
	// process binding it: without this, two clusters can be handed the
	// same one (seen: a hub and a spoke on one API server port).
	portsMu sync.Mutex
	handed  map[int]bool
}

var (
	_ providers.Provider      = (*Provider)(nil)
	_ providers.ProcessLister = (*Provider)(nil)
)

// New returns the embedded provider.
func New(env providers.Env) *Provider {
	return &Provider{env: env, builder: NewBuilder(env.CacheDir, env.Progress)}
}

// NewWithBuilder lets tests substitute the builder.
func NewWithBuilder(env providers.Env, b *Builder) *Provider {
	return &Provider{env: env, builder: b}
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return Name }

// Builder exposes the binary builder (doctor reports whether it is cached).
func (p *Provider) Builder() *Builder { return p.builder }

// Preflight implements providers.Provider: the binaries must exist or be
// buildable, which needs the go command.
func (p *Provider) Preflight(context.Context) error {
	if p.builder.Cached() {
		return nil
	}
	_, err := findGo()
	return err
}

func (p *Provider) binaries(ctx context.Context) (Binaries, error) {
	p.binsOnce.Do(func() { p.bins, p.binsErr = p.builder.Ensure(ctx) })
	return p.bins, p.binsErr
}

// layout names the files of one cluster.
type layout struct{ dir string }

func (l layout) path(parts ...string) string {
	return filepath.Join(append([]string{l.dir}, parts...)...)
}
func (l layout) pki(name string) string { return l.path("pki", name) }
func (l layout) log(name string) string { return l.path("logs", name+".log") }
func (l layout) kubeconfig(who string) string {
	return l.path("kubeconfig", who+".kubeconfig")
}

// ports are the loopback ports of one cluster.
type ports struct {
	etcdClient, etcdPeer, apiserver, controllerManager, scheduler int
}

func (p ports) list() []int {
	return []int{p.etcdClient, p.etcdPeer, p.apiserver, p.controllerManager, p.scheduler}
}

func portsFrom(list []int) (ports, bool) {
	if len(list) != 5 {
		return ports{}, false
	}
	return ports{list[0], list[1], list[2], list[3], list[4]}, true
}

// Ensure implements providers.Provider.
func (p *Provider) Ensure(ctx context.Context, spec providers.Spec, prev *state.Cluster) (*state.Cluster, error) {
	if prev != nil && prev.Provider == Name && len(p.Problems(ctx, *prev)) == 0 && apiReady(ctx, prev.Kubeconfig) == nil {
		return prev, nil // reattach: everything runs and answers
	}
	bins, err := p.binaries(ctx)
	if err != nil {
		return nil, err
	}
	l := layout{dir: filepath.Join(p.env.StateDir, "clusters", spec.Name)}
	var pt ports
	if prev != nil {
		// Restart cleanly: stop whatever survived, keep the data (etcd
		// holds the cluster's objects) and the ports if they are still free.
		step := p.env.Progress.Start(fmt.Sprintf("restart cluster %s (some of its processes are gone)", spec.Name))
		p.stopAll(ctx, *prev)
		step.Done(nil)
		if old, ok := portsFrom(prev.Ports); ok && (spec.APIServerPort == 0 || spec.APIServerPort == old.apiserver) && p.reserve(old.list()) {
			pt = old
		}
	}
	if pt.apiserver == 0 {
		pt, err = p.allocatePorts(spec.APIServerPort)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", spec.Name, err)
		}
	}
	fresh := prev == nil
	c, err := p.start(ctx, spec, l, pt, bins)
	if err != nil {
		if c != nil {
			p.stopAll(context.WithoutCancel(ctx), *c)
		}
		if fresh {
			_ = os.RemoveAll(l.dir)
		}
		return nil, fmt.Errorf("start embedded cluster %q: %w", spec.Name, err)
	}
	return c, nil
}

func (p *Provider) start(ctx context.Context, spec providers.Spec, l layout, pt ports, bins Binaries) (*state.Cluster, error) {
	step := p.env.Progress.Start(fmt.Sprintf("start control plane of %s on 127.0.0.1:%d", spec.Name, pt.apiserver))
	c, err := p.startProcesses(ctx, spec, l, pt, bins, step)
	step.Done(err)
	if err != nil {
		return c, err
	}
	nodeStep := p.env.Progress.Start(fmt.Sprintf("register kwok node of %s", spec.Name))
	err = p.registerNode(ctx, spec.Name, c.Kubeconfig)
	nodeStep.Done(err)
	return c, err
}

func (p *Provider) startProcesses(ctx context.Context, spec providers.Spec, l layout, pt ports, bins Binaries, step interface{ Update(string) }) (*state.Cluster, error) {
	for _, d := range []string{l.path("pki"), l.path("logs"), l.path("kubeconfig"), l.path("etcd")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := p.writeCredentials(l, spec.Name, pt.apiserver); err != nil {
		return nil, err
	}
	endpoint := fmt.Sprintf("https://127.0.0.1:%d", pt.apiserver)
	c := &state.Cluster{
		Name: spec.Name, Role: spec.Role, Provider: Name,
		Endpoint: endpoint, InternalEndpoint: endpoint,
		Kubeconfig: l.kubeconfig("admin"), Dir: l.dir, Ports: pt.list(), Created: time.Now().UTC(),
	}
	run := func(name string, args []string, health string) (<-chan error, error) {
		proc, exited, err := startProcess(name, bins.Path(name), args, l.log(name))
		if err != nil {
			return nil, err
		}
		proc.HealthURL = health
		c.Processes = append(c.Processes, proc)
		return exited, nil
	}

	step.Update("etcd")
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", pt.etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", pt.etcdPeer)
	exited, err := run("etcd", []string{
		"--name", spec.Name,
		"--data-dir", l.path("etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", spec.Name + "=" + peerURL,
		// A workbench cluster is disposable; skipping fsync makes it
		// several times faster on laptop disks.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	}, etcdURL+"/health")
	if err != nil {
		return c, err
	}
	if err := waitHTTP(ctx, "etcd", etcdURL+"/health", exited, l.log("etcd"), 60*time.Second); err != nil {
		return c, err
	}

	step.Update("kube-apiserver")
	exited, err = run("kube-apiserver", []string{
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(pt.apiserver),
		"--tls-cert-file", l.pki("apiserver.crt"), "--tls-private-key-file", l.pki("apiserver.key"),
		"--client-ca-file", l.pki("ca.crt"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", l.pki("sa.pub"),
		"--service-account-signing-key-file", l.pki("sa.key"),
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", serviceCIDR,
		// The endpoint reconciler refuses a loopback advertise address, and
		// there is no pod network to route the kubernetes Service anyway.
		"--endpoint-reconciler-type", "none",
		"--allow-privileged=true",
		"--profiling=false",
	}, "")
	if err != nil {
		return c, err
	}
	c.Processes[len(c.Processes)-1].HealthURL = endpoint + "/readyz"
	if err := waitAPI(ctx, c.Kubeconfig, exited, l.log("kube-apiserver"), 120*time.Second); err != nil {
		return c, err
	}

	step.Update("kube-controller-manager, kube-scheduler, kwok")
	type started struct {
		name   string
		exited <-chan error
		health string
	}
	var rest []started
	kcm := l.kubeconfig("controller-manager")
	ex, err := run("kube-controller-manager", []string{
		"--kubeconfig", kcm, "--authentication-kubeconfig", kcm, "--authorization-kubeconfig", kcm,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(pt.controllerManager),
		"--service-account-private-key-file", l.pki("sa.key"),
		"--root-ca-file", l.pki("ca.crt"),
		"--use-service-account-credentials=true",
		"--leader-elect=false",
		"--controllers", "*",
		"--service-cluster-ip-range", serviceCIDR,
		"--profiling=false",
	}, fmt.Sprintf("https://127.0.0.1:%d/healthz", pt.controllerManager))
	if err != nil {
		return c, err
	}
	rest = append(rest, started{"kube-controller-manager", ex, fmt.Sprintf("https://127.0.0.1:%d/healthz", pt.controllerManager)})
	sched := l.kubeconfig("scheduler")
	ex, err = run("kube-scheduler", []string{
		"--kubeconfig", sched, "--authentication-kubeconfig", sched, "--authorization-kubeconfig", sched,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(pt.scheduler),
		"--leader-elect=false",
		"--profiling=false",
	}, fmt.Sprintf("https://127.0.0.1:%d/healthz", pt.scheduler))
	if err != nil {
		return c, err
	}
	rest = append(rest, started{"kube-scheduler", ex, fmt.Sprintf("https://127.0.0.1:%d/healthz", pt.scheduler)})
	ex, err = run("kwok", []string{
		"--kubeconfig", l.kubeconfig("kwok"),
		"--config", bins.Path("kwok-stages.yaml"),
		"--manage-all-nodes=true",
		"--cidr", "10.244.0.0/16",
		"--node-ip", "127.0.0.1",
	}, "")
	if err != nil {
		return c, err
	}
	rest = append(rest, started{name: "kwok", exited: ex})
	for _, s := range rest {
		if s.health == "" {
			continue
		}
		if err := waitHTTP(ctx, s.name, s.health, s.exited, l.log(s.name), 60*time.Second); err != nil {
			return c, err
		}
	}
	// kwok has no health endpoint here; give it a moment to fail on bad
	// flags or config so the error surfaces now, not as a NotReady node.
	select {
	case err := <-rest[len(rest)-1].exited:
		return c, diedError("kwok", err, l.log("kwok"))
	case <-time.After(500 * time.Millisecond):
	}
	return c, nil
}

// writeCredentials issues the cluster's certificates from the workbench CA
// (reusing what a restart finds) and writes a kubeconfig per identity.
func (p *Provider) writeCredentials(l layout, cluster string, apiPort int) error {
	ca := p.env.CA
	if err := os.WriteFile(l.pki("ca.crt"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(l.pki("sa.key")); err != nil {
		priv, pub, err := pki.NewRSAKeyPEM()
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.pki("sa.key"), priv, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(l.pki("sa.pub"), pub, 0o644); err != nil {
			return err
		}
	}
	serving, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver", Server: true,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.pki("apiserver.crt"), serving.CertPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(l.pki("apiserver.key"), serving.KeyPEM, 0o600); err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	identities := []struct {
		file, user string
		groups     []string
	}{
		{"admin", "tether-admin", []string{"system:masters"}},
		{"controller-manager", "system:kube-controller-manager", nil},
		{"scheduler", "system:kube-scheduler", nil},
		// kwok plays the kubelet of every node; the Node authorizer would
		// scope a kubelet to its own node, and there is one identity for
		// all of them, so it gets cluster-wide rights.
		{"kwok", "kwok", []string{"system:masters"}},
	}
	for _, id := range identities {
		pair, err := ca.Issue(pki.Request{CommonName: id.user, Organizations: id.groups, Client: true})
		if err != nil {
			return err
		}
		data, err := kubeconfigFor(cluster, server, ca.CertPEM, pair)
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.kubeconfig(id.file), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func kubeconfigFor(cluster, server string, caPEM []byte, pair pki.Pair) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[cluster] = &clientcmdapi.AuthInfo{ClientCertificateData: pair.CertPEM, ClientKeyData: pair.KeyPEM}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: cluster}
	cfg.CurrentContext = cluster
	return clientcmd.Write(*cfg)
}

// registerNode creates the kwok node and waits until it is Ready and the
// default ServiceAccount exists, so the first Deployment a user applies
// rolls out at once.
func (p *Provider) registerNode(ctx context.Context, cluster, kubeconfig string) error {
	cs, err := clientFor(kubeconfig)
	if err != nil {
		return err
	}
	name := cluster + "-kwok-0"
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok", "node.tether.dev/cluster": cluster,
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110"),
			},
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110"),
			},
		},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		ready := err == nil && nodeReady(n)
		_, saErr := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if ready && saErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			if !ready {
				return fmt.Errorf("node %s did not become Ready within 90s (is kwok running? see its log)", name)
			}
			return fmt.Errorf("default ServiceAccount did not appear within 90s (see the kube-controller-manager log): %v", saErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Delete implements providers.Provider.
func (p *Provider) Delete(ctx context.Context, c state.Cluster) error {
	errs := p.stopAll(ctx, c)
	if c.Dir != "" {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove data folder: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete embedded cluster %q: %w", c.Name, errors.Join(errs...))
	}
	return nil
}

// stopAll stops the processes in reverse start order: clients of the API
// server first, etcd last, so nothing logs a storm of connection errors.
func (p *Provider) stopAll(ctx context.Context, c state.Cluster) []error {
	var errs []error
	for i := len(c.Processes) - 1; i >= 0; i-- {
		if err := stopProcess(ctx, c.Processes[i], 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Problems implements providers.Provider.
func (p *Provider) Problems(ctx context.Context, c state.Cluster) []string {
	var out []string
	for _, proc := range c.Processes {
		if !alive(proc) {
			out = append(out, fmt.Sprintf("%s (pid %d) is not running; its log: %s", proc.Name, proc.PID, proc.Log))
			continue
		}
		if proc.HealthURL != "" && !strings.HasSuffix(proc.HealthURL, "/readyz") {
			if err := getOK(ctx, proc.HealthURL); err != nil {
				out = append(out, fmt.Sprintf("%s is running but unhealthy: %v", proc.Name, err))
			}
		}
	}
	return out
}

// ProcessInfo is what status shows of one control-plane process.
type ProcessInfo = providers.Process

// Processes implements providers.ProcessLister.
func (p *Provider) Processes(c state.Cluster) []ProcessInfo { return Processes(c) }

// Traits implements providers.Provider: the components run as processes
// here (there is no image store), kwok's nodes run no containers, and
// without kube-proxy Services are reached through tether's service proxy.
func (p *Provider) Traits() providers.Traits {
	return providers.Traits{LocalComponents: true, ServiceProxy: true}
}

// Processes lists a cluster's processes and whether each still runs.
func Processes(c state.Cluster) []ProcessInfo {
	out := make([]ProcessInfo, 0, len(c.Processes))
	for _, proc := range c.Processes {
		out = append(out, ProcessInfo{Name: proc.Name, PID: proc.PID, Alive: alive(proc), Log: proc.Log})
	}
	return out
}

// Alive reports whether a recorded process still runs (used by tests and
// status to check that down left nothing behind).
func Alive(p state.Process) bool { return alive(p) }

// reserve records list as handed out if every port is free and none was
// handed to another cluster of this Provider.
func (p *Provider) reserve(list []int) bool {
	p.portsMu.Lock()
	defer p.portsMu.Unlock()
	for _, port := range list {
		if p.handed[port] || portFree(port) != nil {
			return false
		}
	}
	p.markLocked(list)
	return true
}

func (p *Provider) markLocked(list []int) {
	if p.handed == nil {
		p.handed = map[int]bool{}
	}
	for _, port := range list {
		p.handed[port] = true
	}
}

func (p *Provider) allocatePorts(apiPort int) (ports, error) {
	p.portsMu.Lock()
	defer p.portsMu.Unlock()
	if apiPort != 0 {
		if p.handed[apiPort] {
			return ports{}, fmt.Errorf("API server port %d is pinned for two clusters: give each cluster its own apiServerPort (0 picks a free one)", apiPort)
		}
		if err := portFree(apiPort); err != nil {
			return ports{}, err
		}
	}
	var got []int
	var holds []net.Listener
	defer func() {
		for _, h := range holds {
			h.Close()
		}
	}()
	// Hold every listener until all ports are chosen so the kernel cannot
	// hand the same port out twice, and skip ports another cluster of this
	// up was given but has not bound yet.
	for len(got) < 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ports{}, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		holds = append(holds, l)
		if port := l.Addr().(*net.TCPAddr).Port; !p.handed[port] && port != apiPort {
			got = append(got, port)
		}
	}
	pt := ports{got[0], got[1], got[2], got[3], got[4]}
	if apiPort != 0 {
		pt.apiserver = apiPort
	}
	p.markLocked(pt.list())
	return pt, nil
}

// PortFree returns an error that names the port and the fix when something
// already listens on 127.0.0.1:port.
func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("API server port %d on 127.0.0.1 is already in use: stop what listens there or choose another apiServerPort (0 picks a free one)", port)
	}
	return l.Close()
}

// PortFree is exported for the workbench's preflight of pinned ports.
func PortFree(port int) error { return portFree(port) }

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

func apiReady(ctx context.Context, kubeconfig string) error {
	cs, err := clientFor(kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

func waitAPI(ctx context.Context, kubeconfig string, exited <-chan error, logPath string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = apiReady(ctx, kubeconfig); last == nil {
			return nil
		}
		select {
		case err := <-exited:
			return diedError("kube-apiserver", err, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready after %s (%v); see %s", timeout, last, logPath)
}

func waitHTTP(ctx context.Context, name, url string, exited <-chan error, logPath string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = getOK(ctx, url); last == nil {
			return nil
		}
		select {
		case err := <-exited:
			return diedError(name, err, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not healthy after %s (%v); see %s", name, timeout, last, logPath)
}

func diedError(name string, err error, logPath string) error {
	return fmt.Errorf("%s exited during start-up (%v): %s (full log: %s)", name, err, lastErrors(logPath), logPath)
}

// getOK probes a health endpoint. The components serve self-signed
// certificates on loopback and /healthz needs no credentials, so skipping
// verification here trusts nothing beyond "this port answers 200".
func getOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // health probe only, see above
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
