package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/engine"
	"github.com/tether-dev/tether/gitops/principal"
	"github.com/tether-dev/tether/gitops/sample"
)

// Names the system uses.
const (
	// SampleRepo is the repository the Git server is seeded with.
	SampleRepo = "sample"
	// SampleApp is the Application created per spoke.
	SampleApp = "sample"
	// SampleNamespace is where the sample lands on each spoke.
	SampleNamespace = "sample"
	// principalServerName is in the principal's certificate and is what
	// agents verify, on both providers.
	principalServerName = "tether-principal.tether-system.svc"
)

// Options configure Up and Down.
type Options struct {
	Workbench *cluster.Workbench
	// Bin is the tether binary: child processes run it (embedded), and on
	// kind it goes into the image as it is when it is a static Linux
	// binary for the nodes' platform. Empty means the running one.
	Bin string
	// ModuleRoot is tether's source checkout, from which kind's image is
	// cross-compiled when Bin does not fit the nodes; empty means the
	// working directory or a parent of it.
	ModuleRoot string
	Progress   progress.Reporter
	Logger     *slog.Logger
	// Wait bounds the wait for every spoke to be Synced and Healthy.
	Wait time.Duration
}

// State is what Up records in the workbench's state folder.
type State struct {
	Provider string `json:"provider"`
	// GitURL is the sample repository as the agents fetch it.
	GitURL string `json:"gitURL"`
	// LocalGitURL is the sample repository as this machine reaches it
	// (empty on kind: reach it through a port-forward).
	LocalGitURL string `json:"localGitURL,omitempty"`
	// Principal is the principal process's own address (embedded), or the
	// address agents dial (kind: the NodePort of its Service).
	Principal string `json:"principal"`
	// PrincipalHTTP is the principal process's own health and webhook
	// address (embedded), recorded so a restart can keep it.
	PrincipalHTTP string `json:"principalHTTP,omitempty"`
	// PrincipalService is the principal's Service as agents dial it on the
	// embedded provider: the service proxy's pinned loopback address for
	// tether-system/tether-principal:8443. Intercepting that Service moves
	// the agents (see docs/debugging.md).
	PrincipalService string `json:"principalService,omitempty"`
	// PrincipalServiceHTTP is the same Service's HTTP port (health and
	// the Git push webhook, tether-system/tether-principal:8080) as the
	// service proxy serves it on the embedded provider; the Git server
	// posts its push webhooks there, so intercepting port 8080 carries
	// them to a principal run locally along with the agents.
	PrincipalServiceHTTP string `json:"principalServiceHTTP,omitempty"`
	// SampleServices are, on the embedded provider, where each spoke's
	// service proxy serves the sample's Service (web:80) on loopback, by
	// spoke: what `tether sample url` prints and curl reaches. A tether
	// sample server stands in for the sample's kwok pods behind it.
	SampleServices map[string]string `json:"sampleServices,omitempty"`
	Processes      []process.Record  `json:"processes,omitempty"`
	Spokes         []string          `json:"spokes"`
}

func (o *Options) defaults() error {
	if o.Workbench == nil {
		return errors.New("fleet: no workbench")
	}
	if o.Progress == nil {
		o.Progress = progress.Discard()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wait == 0 {
		o.Wait = 5 * time.Minute
	}
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Bin = exe
	}
	return nil
}

func dir(wb *cluster.Workbench) string              { return filepath.Join(wb.StateDir(), "fleet") }
func statePath(wb *cluster.Workbench) string        { return filepath.Join(dir(wb), "fleet.json") }
func tlsDir(wb *cluster.Workbench, n string) string { return filepath.Join(dir(wb), "tls", n) }

// Load reads the recorded state; nil when the system is not up.
func Load(wb *cluster.Workbench) (*State, error) {
	data, err := os.ReadFile(statePath(wb))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("fleet state %s is damaged (%v): run `tether down`", statePath(wb), err)
	}
	return &st, nil
}

func save(wb *cluster.Workbench, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(wb) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(wb))
}

// Up brings the system up on the workbench's clusters, or reattaches to it.
func Up(ctx context.Context, opts Options) (*State, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	wb := opts.Workbench
	clusters, err := wb.Clusters()
	if err != nil {
		return nil, err
	}
	if len(clusters) == 0 {
		return nil, errors.New("the workbench has no clusters: run `tether up`")
	}
	provider := clusters[0].Provider
	hub, spokes := clusters[0], clusters[1:]
	if err := os.MkdirAll(dir(wb), 0o700); err != nil {
		return nil, err
	}
	prev, err := Load(wb)
	if err != nil {
		return nil, err
	}
	ca, err := wb.CA()
	if err != nil {
		return nil, err
	}
	if err := writeCertificates(wb, ca, hub, spokes); err != nil {
		return nil, err
	}
	var st *State
	switch provider {
	case cluster.ProviderKind:
		st, err = upKind(ctx, opts, hub, spokes)
	default:
		st, err = upLocal(ctx, opts, prev, hub, spokes)
	}
	if err != nil {
		return nil, err
	}
	if err := save(wb, st); err != nil {
		return nil, err
	}
	// Before the sample Applications: a spoke of the same name added back
	// must not meet its predecessor's namespace still terminating.
	if err := pruneLeftSpokes(ctx, opts, prev, hub, spokes); err != nil {
		return st, err
	}
	if err := createSampleApps(ctx, opts, st, hub, spokes); err != nil {
		return st, err
	}
	if err := waitSynced(ctx, opts, hub, spokes); err != nil {
		return st, err
	}
	return st, waitSampleAnswers(ctx, opts, st)
}

// waitSampleAnswers waits until the sample answers at every spoke's
// loopback address (embedded), which checks the chain a newcomer's first
// curl takes: service proxy, EndpointSlice, stand-in annotation, server.
// Any answer will do: an intercept of the sample may hold the Service.
func waitSampleAnswers(ctx context.Context, opts Options, st *State) error {
	if len(st.SampleServices) == 0 {
		return nil
	}
	step := opts.Progress.Start("check that the sample answers on every spoke")
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range st.Spokes {
		addr := st.SampleServices[name]
		for {
			body, err := httpGet(ctx, client, "http://"+addr+"/")
			if err == nil {
				step.Update(name + ": " + strings.TrimSpace(body))
				break
			}
			if time.Now().After(deadline) {
				err = fmt.Errorf("the sample of %s does not answer at http://%s/ after 30s (%v); see %s (service-proxy-%s.log, sample-%s.log)",
					name, addr, err, filepath.Join(dir(opts.Workbench), "logs"), name, name)
				step.Done(err)
				return err
			}
			select {
			case <-ctx.Done():
				step.Done(ctx.Err())
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	step.Done(nil)
	return nil
}

func httpGet(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), err
}

func writeCertificates(wb *cluster.Workbench, ca *pki.CA, hub cluster.Cluster, spokes []cluster.Cluster) error {
	write := func(name string, pair pki.Pair) error {
		d := tlsDir(wb, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		for f, b := range map[string][]byte{"ca.crt": ca.CertPEM, "tls.crt": pair.CertPEM, "tls.key": pair.KeyPEM} {
			if err := os.WriteFile(filepath.Join(d, f), b, 0o600); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(tlsDir(wb, "principal"), "tls.crt")); err != nil {
		ips := []net.IP{net.ParseIP("127.0.0.1")}
		names := []string{principalServerName, principalServerName + ".cluster.local", "tether-principal", "localhost"}
		// On kind the hub is reached by its node container's name (an IP
		// can change when Docker restarts), on embedded by an address.
		if h := hostOf(hub.InternalEndpoint); h != "" {
			if ip := net.ParseIP(h); ip != nil {
				ips = append(ips, ip)
			} else {
				names = append(names, h)
			}
		}
		pair, err := ca.Issue(pki.Request{CommonName: "tether-principal", Server: true, IPs: ips, DNSNames: names})
		if err != nil {
			return err
		}
		if err := write("principal", pair); err != nil {
			return err
		}
	}
	for _, s := range spokes {
		if _, err := os.Stat(filepath.Join(tlsDir(wb, s.Name), "tls.crt")); err == nil {
			continue
		}
		pair, err := principal.AgentCertificate(ca, s.Name)
		if err != nil {
			return err
		}
		if err := write(s.Name, pair); err != nil {
			return err
		}
	}
	return nil
}

func readTLS(wb *cluster.Workbench, name string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		b, err := os.ReadFile(filepath.Join(tlsDir(wb, name), f))
		if err != nil {
			return nil, err
		}
		out[f] = b
	}
	return out, nil
}

// upLocal runs the components as child processes (embedded and existing
// providers), reattaching to the ones a previous up left running.
func upLocal(ctx context.Context, opts Options, prev *State, hub cluster.Cluster, spokes []cluster.Cluster) (*State, error) {
	wb := opts.Workbench
	why := restartReason(prev, spokes)
	if why == "" {
		return prev, nil
	}
	if prev != nil {
		step := opts.Progress.Start("restart the GitOps components (" + why + ")")
		stopAll(ctx, prev.Processes)
		step.Done(nil)
	}
	// The same addresses as before, where still free: agents, the Git
	// server's webhook, the Applications' repoURL and whoever read up's
	// output (or fleet.json) were told them, and an intercept of the
	// principal's Service is set up against them.
	was := previousAddrs(prev)
	addrs, err := process.LoopbackAddrs(was)
	if err != nil {
		return nil, err
	}
	for i, a := range addrs {
		if was[i] != "" && a != was[i] {
			opts.Logger.Warn("an address of the GitOps system moved: another program listens on the old one", "what", addrNames()[i], "was", was[i], "now", a)
		}
	}
	gitAddr, grpcAddr, httpAddr, serviceAddr, serviceHTTPAddr := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	st := &State{Provider: hub.Provider, GitURL: "http://" + gitAddr + "/" + SampleRepo + ".git", Principal: grpcAddr, PrincipalHTTP: httpAddr,
		PrincipalService: serviceAddr, PrincipalServiceHTTP: serviceHTTPAddr}
	st.LocalGitURL = st.GitURL
	for _, s := range spokes {
		st.Spokes = append(st.Spokes, s.Name)
	}
	logs := filepath.Join(dir(wb), "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return nil, err
	}
	common := []string{"--state-dir", wb.StateDir(), "--kubeconfig"}
	start := func(name string, args ...string) (<-chan error, error) {
		rec, exited, err := process.Start(name, opts.Bin, args, filepath.Join(logs, name+".log"), nil)
		if err != nil {
			return nil, err
		}
		st.Processes = append(st.Processes, rec)
		return exited, nil
	}
	fail := func(err error) (*State, error) {
		stopAll(context.WithoutCancel(ctx), st.Processes)
		return nil, err
	}

	// The push webhook goes to the principal's Service, as on kind, not
	// to the process: an intercept of port 8080 then carries pushes to a
	// principal run locally (docs/debugging.md). The Service is served
	// only once the service proxy runs, further down: the seed's webhook
	// finds nobody, as it would find no principal yet anyway.
	step := opts.Progress.Start("start the Git server and seed the sample repository")
	exited, err := start("git", "git", "serve", "--root", filepath.Join(dir(wb), "git"), "--addr", gitAddr,
		"--repo", SampleRepo, "--webhook", "http://"+serviceHTTPAddr+"/webhook/git", "-v")
	if err == nil {
		err = waitHTTP(ctx, "git server", "http://"+gitAddr+"/"+SampleRepo+".git/info/refs?service=git-upload-pack", exited, logs)
	}
	if err == nil {
		err = ensureSample(ctx, step, st.GitURL, st.Spokes, localWorkload(hub.Provider))
	}
	step.Done(err)
	if err != nil {
		return fail(err)
	}

	step = opts.Progress.Start("start the principal on the hub")
	exited, err = start("principal", append([]string{"principal"}, append(common, hub.AdminKubeconfig,
		"--listen", grpcAddr, "--http", httpAddr, "--tls-dir", tlsDir(wb, "principal"), "-v")...)...)
	if err == nil {
		err = waitHTTP(ctx, "principal", "http://"+httpAddr+"/healthz", exited, logs)
	}
	step.Done(err)
	if err != nil {
		return fail(err)
	}

	// The same manifests kind runs, applied for real: the API server
	// validates them and kwok stands in for the containers. The pods carry
	// the loopback addresses of the processes standing in for them, which
	// is how the service proxy routes their Services.
	step = opts.Progress.Start("apply the component manifests (validated by each API server)")
	err = applyManifests(ctx, opts, hub, spokes, manifestOptions{
		image: sample.DefaultImage, principalAddr: serviceAddr, gitURL: st.GitURL,
		principalPod: map[string]string{
			svcproxy.LocalAddressKey(deploy.PrincipalPort):     grpcAddr,
			svcproxy.LocalAddressKey(deploy.DefaultHealthPort): httpAddr,
		},
		gitPod: map[string]string{svcproxy.LocalAddressKey(deploy.GitPort): gitAddr},
	})
	step.Done(err)
	if err != nil {
		return fail(err)
	}

	// Agents dial the principal's Service, and the Git server posts to
	// it, as on kind, so that an intercept of that Service (a selector
	// swap) reaches them. Both ports are pinned: the agents and the Git
	// server were given these addresses and must keep them.
	step = opts.Progress.Start(fmt.Sprintf("serve the principal's Service on %s and %s (embedded service proxy)", serviceAddr, serviceHTTPAddr))
	pin := func(port int32, addr string) string {
		return fmt.Sprintf("%s/%s:%d=%s", deploy.DefaultNamespace, deploy.PrincipalName, port, addr)
	}
	exited, err = start("service-proxy", "intercept", "service-proxy", hub.Name, "--state-dir", wb.StateDir(), "--kubeconfig", wb.KubeconfigPath(),
		"--namespace", deploy.DefaultNamespace, "--pin", pin(deploy.PrincipalPort, serviceAddr), "--pin", pin(deploy.DefaultHealthPort, serviceHTTPAddr),
		"--mapping-file", routesPath(wb, hub.Name), "-v")
	if err == nil {
		err = waitPrincipalService(ctx, wb, serviceAddr, spokes, exited, logs)
	}
	if err == nil {
		// Both ports come from the same EndpointSlice, so this is quick;
		// without it the first push after up could miss its webhook.
		err = waitHTTP(ctx, fmt.Sprintf("the principal's Service port %d at %s", deploy.DefaultHealthPort, serviceHTTPAddr),
			"http://"+serviceHTTPAddr+"/healthz", exited, logs)
	}
	step.Done(err)
	if err != nil {
		return fail(err)
	}

	for _, s := range spokes {
		step := opts.Progress.Start("start the agent of " + s.Name)
		healthAddr, herr := freeAddr()
		if herr != nil {
			step.Done(herr)
			return fail(herr)
		}
		exited, err := start("agent-"+s.Name, append([]string{"agent"}, append(common, s.AdminKubeconfig,
			"--name", s.Name, "--principal", serviceAddr, "--server-name", principalServerName,
			"--tls-dir", tlsDir(wb, s.Name), "--health-addr", healthAddr, "-v")...)...)
		if err == nil {
			err = waitHTTP(ctx, "agent "+s.Name, "http://"+healthAddr+"/healthz", exited, logs)
		}
		step.Done(err)
		if err != nil {
			return fail(err)
		}
	}
	if hub.Provider == cluster.ProviderEmbedded {
		if err := serveSamples(ctx, opts, prev, st, spokes, start, logs); err != nil {
			return fail(err)
		}
	}
	return st, nil
}

// serveSamples makes the sample answer on every embedded spoke: kwok pods
// run nothing, so a tether sample server per spoke stands in for the
// sample's pods (it writes its address on them), and a service proxy per
// spoke serves the spoke's Services on loopback, the sample's web:80 on a
// pinned address kept across restarts. An intercept of the sample swaps
// the Service's endpoints; the address stays and the answer changes.
func serveSamples(ctx context.Context, opts Options, prev *State, st *State, spokes []cluster.Cluster, start func(string, ...string) (<-chan error, error), logs string) error {
	wb := opts.Workbench
	was := make([]string, len(spokes))
	for i, s := range spokes {
		if prev != nil && prev.Provider == cluster.ProviderEmbedded {
			was[i] = prev.SampleServices[s.Name]
		}
	}
	addrs, err := process.LoopbackAddrs(was)
	if err != nil {
		return err
	}
	st.SampleServices = map[string]string{}
	for i, s := range spokes {
		if was[i] != "" && addrs[i] != was[i] {
			opts.Logger.Warn("the sample's address moved: another program listens on the old one", "spoke", s.Name, "was", was[i], "now", addrs[i])
		}
		step := opts.Progress.Start(fmt.Sprintf("serve the sample of %s on %s (sample server and service proxy)", s.Name, addrs[i]))
		serverAddr, err := freeAddr()
		if err != nil {
			step.Done(err)
			return err
		}
		exited, err := start("sample-"+s.Name, "sample", "serve", "--listen", serverAddr, "--cluster", s.Name,
			"--stand-in", SampleNamespace, "--kubeconfig", s.AdminKubeconfig, "-v")
		if err == nil {
			err = waitHTTP(ctx, "the sample server of "+s.Name, "http://"+serverAddr+"/healthz", exited, logs)
		}
		if err == nil {
			pin := fmt.Sprintf("%s/%s:%d=%s", SampleNamespace, sample.AppName, sample.ServicePort, addrs[i])
			_, err = start("service-proxy-"+s.Name, "intercept", "service-proxy", s.Name, "--state-dir", wb.StateDir(), "--kubeconfig", wb.KubeconfigPath(),
				"--pin", pin, "--mapping-file", routesPath(wb, s.Name), "-v")
		}
		step.Done(err)
		if err != nil {
			return err
		}
		st.SampleServices[s.Name] = addrs[i]
	}
	return nil
}

// routesPath is where the service proxy of an embedded cluster writes its
// Service → loopback address table.
func routesPath(wb *cluster.Workbench, clusterName string) string {
	return filepath.Join(dir(wb), "routes-"+clusterName+".json")
}

// ServiceAddr is where this machine reaches a Service port of a cluster:
// on the embedded provider the loopback address the cluster's service
// proxy serves it on. Other providers have no such address; the error says
// how to reach the Service there.
func ServiceAddr(wb *cluster.Workbench, clusterName, ns, svc string, port int32) (string, error) {
	st, err := Load(wb)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", errors.New("the GitOps system is not up: run `tether up`")
	}
	if st.Provider != cluster.ProviderEmbedded {
		return "", fmt.Errorf("on the %s provider this machine reaches %s/%s/%s:%d through a port-forward: kubectl --context tether-%s -n %s port-forward svc/%s 8080:%d, then http://127.0.0.1:8080/ (an intercept start of it opens one and prints it)",
			st.Provider, clusterName, ns, svc, port, clusterName, ns, svc, port)
	}
	path := routesPath(wb, clusterName)
	routes, err := svcproxy.ReadMapping(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no service proxy serves cluster %q on this machine (no %s): is it one of the workbench's clusters? `tether status` lists them; `tether up` starts the proxies", clusterName, path)
	}
	if err != nil {
		return "", fmt.Errorf("read the service proxy's table of %s: %w", clusterName, err)
	}
	for _, r := range routes {
		if r.Namespace == ns && r.Service == svc && r.Port == port {
			return r.Address, nil
		}
	}
	if clusterName == hubName(wb) {
		return "", fmt.Errorf("the hub's service proxy serves only namespace %s, not %s/%s:%d: run `tether intercept service-proxy %s --namespace %s` for it", deploy.DefaultNamespace, ns, svc, port, clusterName, ns)
	}
	return "", fmt.Errorf("the service proxy of %s does not serve %s/%s port %d (yet): does the Service exist with that port? kubectl --context tether-%s -n %s get svc %s", clusterName, ns, svc, port, clusterName, ns, svc)
}

// hubName is the hub's name as the workbench records it ("" when it
// cannot tell).
func hubName(wb *cluster.Workbench) string {
	clusters, err := wb.Clusters()
	if err != nil || len(clusters) == 0 {
		return ""
	}
	return clusters[0].Name
}

// addrNames say what each of previousAddrs' addresses is, for the warning
// when one moves.
func addrNames() []string {
	return []string{"the Git server", "the principal (gRPC)", "the principal (HTTP)",
		"the principal's Service port 8443 (agents dial it)", "the principal's Service port 8080 (the Git webhook posts to it)"}
}

// previousAddrs are the loopback addresses a previous upLocal gave the
// Git server, the principal (gRPC, HTTP) and the principal's Service
// (8443, 8080), in that order; "" where the record has none (nothing
// recorded, another provider, or an older tether that did not record it).
func previousAddrs(prev *State) []string {
	out := make([]string, len(addrNames()))
	if prev == nil || prev.Provider == cluster.ProviderKind {
		return out
	}
	if u, err := url.Parse(prev.GitURL); err == nil {
		out[0] = u.Host
	}
	out[1], out[2], out[3], out[4] = prev.Principal, prev.PrincipalHTTP, prev.PrincipalService, prev.PrincipalServiceHTTP
	return out
}

// localWorkload is what the sample runs when the components run as local
// processes. On the embedded provider kwok runs no containers, so the
// sample names tether's server with the placeholder image the components'
// manifests use too, and the API server validates the same Deployment kind
// runs. An existing cluster has real nodes but no image store tether could
// load its image into, and nothing publishes that image: it runs a public
// one.
func localWorkload(provider string) sample.Workload {
	if provider == cluster.ProviderExisting {
		return sample.NginxWorkload
	}
	return sample.TetherWorkload(sample.DefaultImage)
}

// waitPrincipalService waits until a TLS handshake through the principal's
// Service address reaches the principal: the service proxy listens, the
// pod is Ready, its EndpointSlice is written and the proxy has seen it.
// Starting the agents earlier would only cost them a backoff.
func waitPrincipalService(ctx context.Context, wb *cluster.Workbench, addr string, spokes []cluster.Cluster, exited <-chan error, logs string) error {
	cfg, err := probeTLS(wb, spokes)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the principal's Service at %s does not reach the principal after 60s (%v); see %s", addr, err, logs)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the service proxy exited during start-up (%v); see %s", err, logs)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// probeTLS verifies the principal as agents do. It presents the first
// spoke's client certificate, so the principal sees a well-formed client
// rather than a refused handshake; with no spokes, the server's
// certificate alone proves the route.
func probeTLS(wb *cluster.Workbench, spokes []cluster.Cluster) (*tls.Config, error) {
	ptls, err := readTLS(wb, "principal")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ptls["ca.crt"]) {
		return nil, fmt.Errorf("no CA certificate in %s", tlsDir(wb, "principal"))
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: principalServerName, MinVersion: tls.VersionTLS13}
	if len(spokes) > 0 {
		atls, err := readTLS(wb, spokes[0].Name)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(atls["tls.crt"], atls["tls.key"])
		if err != nil {
			return nil, fmt.Errorf("agent certificate of %s: %w", spokes[0].Name, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// manifestOptions are what differs between the providers' manifests.
type manifestOptions struct {
	image string
	// principalAddr is where agents reach the principal.
	principalAddr, gitURL string
	// nodePort exposes the principal (and the Git server on the next
	// port) on the node: kind only.
	nodePort int32
	gitArgs  []string
	// principalPod and gitPod annotate the pods with the loopback
	// addresses of the processes standing in for them: embedded only.
	principalPod, gitPod map[string]string
}

func applyManifests(ctx context.Context, opts Options, hub cluster.Cluster, spokes []cluster.Cluster, m manifestOptions) error {
	wb := opts.Workbench
	hubCfg, err := wb.RESTConfig(hub.Name)
	if err != nil {
		return err
	}
	ptls, err := readTLS(wb, "principal")
	if err != nil {
		return err
	}
	popts := deploy.Options{Image: m.image, PullPolicy: corev1.PullIfNotPresent, TLS: ptls, NodePort: m.nodePort, PodAnnotations: m.principalPod}
	objs, err := deploy.Principal(popts)
	if err != nil {
		return err
	}
	gopts := popts
	gopts.TLS = nil
	gopts.Args = m.gitArgs
	gopts.PodAnnotations = m.gitPod
	if m.nodePort != 0 {
		gopts.NodePort = m.nodePort + 1
	}
	gitObjs, err := deploy.GitServer(gopts)
	if err != nil {
		return err
	}
	if err := engine.InstallCRDs(ctx, hubCfg, v1alpha1.ApplicationCRD(), v1alpha1.AgentCRD()); err != nil {
		return err
	}
	if err := deploy.Apply(ctx, hubCfg, append(objs, gitObjs...), deploy.FieldManager); err != nil {
		return fmt.Errorf("hub %q: %w", hub.Name, err)
	}
	for _, s := range spokes {
		cfg, err := wb.RESTConfig(s.Name)
		if err != nil {
			return err
		}
		atls, err := readTLS(wb, s.Name)
		if err != nil {
			return err
		}
		objs, err := deploy.Agent(deploy.Options{Image: m.image, PullPolicy: corev1.PullIfNotPresent, TLS: atls, Spoke: s.Name, PrincipalAddress: m.principalAddr, GitURL: m.gitURL})
		if err != nil {
			return err
		}
		if err := deploy.Apply(ctx, cfg, objs, deploy.FieldManager); err != nil {
			return fmt.Errorf("spoke %q: %w", s.Name, err)
		}
	}
	return nil
}

// createSampleApps puts one Application per spoke into the hub namespace
// named after it: the hub is the source of truth (managed mode).
func createSampleApps(ctx context.Context, opts Options, st *State, hub cluster.Cluster, spokes []cluster.Cluster) error {
	cfg, err := opts.Workbench.RESTConfig(hub.Name)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	step := opts.Progress.Start(fmt.Sprintf("create the sample Application for %d spokes on the hub", len(spokes)))
	for _, s := range spokes {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: map[string]string{"app.kubernetes.io/managed-by": "tether"}}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			step.Done(err)
			return fmt.Errorf("create hub namespace %s: %w", s.Name, err)
		}
		app := &v1alpha1.Application{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
			ObjectMeta: metav1.ObjectMeta{Name: SampleApp, Namespace: s.Name},
			Spec: v1alpha1.ApplicationSpec{
				Source:      v1alpha1.Source{RepoURL: st.GitURL, TargetRevision: sample.Branch, Path: sample.OverlayDir(s.Name)},
				Destination: v1alpha1.Destination{Namespace: SampleNamespace},
				SyncPolicy: &v1alpha1.SyncPolicy{Automated: &v1alpha1.Automated{Prune: true, SelfHeal: true},
					SyncOptions: []string{v1alpha1.SyncOptionCreateNamespace}},
			},
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
		if err != nil {
			step.Done(err)
			return err
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		if _, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(s.Name).Apply(ctx, SampleApp, u, metav1.ApplyOptions{FieldManager: deploy.FieldManager, Force: true}); err != nil {
			step.Done(err)
			return fmt.Errorf("create the sample Application for %s: %w", s.Name, err)
		}
	}
	step.Done(nil)
	return nil
}

// waitSynced waits until the hub shows every spoke's sample Synced and
// Healthy, reporting how many are there.
func waitSynced(ctx context.Context, opts Options, hub cluster.Cluster, spokes []cluster.Cluster) error {
	if len(spokes) == 0 {
		return nil
	}
	cfg, err := opts.Workbench.RESTConfig(hub.Name)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	step := opts.Progress.Start("wait until every spoke reports Synced and Healthy on the hub")
	deadline := time.Now().Add(opts.Wait)
	var last string
	for {
		ready := 0
		for _, s := range spokes {
			u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(s.Name).Get(ctx, SampleApp, metav1.GetOptions{})
			if err != nil {
				last = fmt.Sprintf("%s: %v", s.Name, err)
				continue
			}
			sync, _, _ := unstructured.NestedString(u.Object, "status", "sync", "status")
			health, _, _ := unstructured.NestedString(u.Object, "status", "health", "status")
			if sync == v1alpha1.SyncStatusSynced && health == "Healthy" {
				ready++
			} else {
				last = fmt.Sprintf("%s: %s/%s", s.Name, orDash(sync), orDash(health))
			}
		}
		step.Update(fmt.Sprintf("%d/%d spokes Synced and Healthy", ready, len(spokes)))
		if ready == len(spokes) {
			step.Done(nil)
			return nil
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("not every spoke was Synced and Healthy within %s (last: %s); see the logs in %s and `tether app get sample -n %s --context %s`",
				opts.Wait, last, filepath.Join(dir(opts.Workbench), "logs"), spokes[0].Name, hub.Context)
			step.Done(err)
			return err
		}
		select {
		case <-ctx.Done():
			step.Done(ctx.Err())
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Down stops the components. Clusters are the workbench's business; on
// kind they disappear with their pods.
func Down(ctx context.Context, wb *cluster.Workbench) error {
	st, err := Load(wb)
	if err != nil || st == nil {
		return err
	}
	stopAll(ctx, st.Processes)
	return os.RemoveAll(dir(wb))
}

// ComponentStatus is one process of the system.
type ComponentStatus struct {
	Name  string
	PID   int
	Alive bool
	Log   string
}

// Components lists the system's processes (embedded) and whether each runs.
func Components(wb *cluster.Workbench) ([]ComponentStatus, error) {
	st, err := Load(wb)
	if err != nil || st == nil {
		return nil, err
	}
	var out []ComponentStatus
	for _, p := range st.Processes {
		out = append(out, ComponentStatus{Name: p.Name, PID: p.PID, Alive: process.Alive(p), Log: p.Log})
	}
	return out, nil
}

func stopAll(ctx context.Context, procs []process.Record) {
	for i := len(procs) - 1; i >= 0; i-- {
		_ = process.Stop(ctx, procs[i], 10*time.Second)
	}
}

// restartReason says why the components a previous up recorded cannot be
// kept as they are, or "" when they can. A state missing an address later
// versions added was written by an older up whose components do not serve
// it (without PrincipalService the agents dial the process, without
// PrincipalServiceHTTP the Git server's webhook does): restart them.
func restartReason(prev *State, spokes []cluster.Cluster) string {
	switch {
	case prev == nil:
		return "none running"
	case prev.PrincipalService == "" || prev.PrincipalServiceHTTP == "":
		return "an older tether started them, without the principal's Service addresses"
	case prev.Provider == cluster.ProviderEmbedded && len(prev.SampleServices) != len(spokes):
		return "an older tether started them, without the sample's servers"
	case !allAlive(prev.Processes):
		return "some are gone"
	case !sameSpokes(prev.Spokes, spokes):
		return "the spokes changed"
	}
	return ""
}

func allAlive(procs []process.Record) bool {
	if len(procs) == 0 {
		return false
	}
	for _, p := range procs {
		if !process.Alive(p) {
			return false
		}
	}
	return true
}

func sameSpokes(names []string, spokes []cluster.Cluster) bool {
	if len(names) != len(spokes) {
		return false
	}
	for i, s := range spokes {
		if names[i] != s.Name {
			return false
		}
	}
	return true
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(ctx context.Context, what, url string, exited <-chan error, logs string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s (%v); see %s", what, err, logs)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited during start-up (%v); see %s", what, err, logs)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// MakeChange commits a new replica count for the sample to the sample
// repository, so a newcomer can watch one commit roll out to every spoke.
// It returns the new commit.
func MakeChange(ctx context.Context, wb *cluster.Workbench, replicas int) (string, error) {
	st, err := Load(wb)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", errors.New("the GitOps system is not up: run `tether up`")
	}
	edits := []sample.Edit{sample.Scale(sample.PlainDeployment, replicas)}
	for _, s := range st.Spokes {
		edits = append(edits, sample.ScaleOverlay(s, replicas))
	}
	return Commit(ctx, wb, fmt.Sprintf("scale the sample to %d replicas", replicas), edits...)
}

// Commit commits edits to the sample repository the way a user's git push
// does, on either provider: straight to the Git server on loopback
// (embedded), or through a port-forward to its pod on the hub (kind). The
// push webhook then carries the change to every agent.
func Commit(ctx context.Context, wb *cluster.Workbench, msg string, edits ...sample.Edit) (string, error) {
	st, err := Load(wb)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", errors.New("the GitOps system is not up: run `tether up`")
	}
	if st.LocalGitURL != "" {
		return sample.Commit(ctx, st.LocalGitURL, msg, edits...)
	}
	clusters, err := wb.Clusters()
	if err != nil || len(clusters) == 0 {
		return "", fmt.Errorf("no hub to reach the Git server on: %v", err)
	}
	var sha string
	err = withGitForward(ctx, wb, clusters[0].Name, func(base string) error {
		var cerr error
		sha, cerr = sample.Commit(ctx, base+"/"+SampleRepo+".git", msg, edits...)
		return cerr
	})
	return sha, err
}
