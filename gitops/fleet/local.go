package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/sample"
)

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
	// Crash watches end with up: from then on a crash is the
	// supervisor's to handle and status's to show.
	watch, endWatch := context.WithCancel(ctx)
	defer endWatch()
	start := func(name string, args ...string) (<-chan error, error) {
		rec, exited, err := startSupervised(opts.Bin, name, args, filepath.Join(logs, name+".log"))
		if err != nil {
			return nil, err
		}
		st.Processes = append(st.Processes, rec)
		return process.CrashWatch(watch, exited, rec.Status), nil
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
		err = ensureSample(ctx, step, st.GitURL, st.Spokes, localWorkload(hub.Traits))
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
	if standsInForSample(hub.Traits) {
		if err := serveSamples(ctx, opts, prev, st, spokes, start, logs); err != nil {
			return fail(err)
		}
	}
	return st, nil
}

// startSupervised runs a component under `tether supervise`, which
// restarts it when it crashes, as a kubelet would its container. The
// record is the supervisor's, whose process group holds the component, so
// Stop and Alive work as before; its Args are the component's command
// line, which a debugger session copies.
func startSupervised(bin, name string, args []string, logPath string) (process.Record, <-chan error, error) {
	status := process.StatusPath(logPath)
	// A status a previous supervisor left would report its crashes.
	if err := os.Remove(status); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return process.Record{}, nil, fmt.Errorf("remove the old supervisor status of %s: %w", name, err)
	}
	sup := append([]string{"supervise", "--name", name, "--status-file", status, "--", bin}, args...)
	rec, exited, err := process.Start(name, bin, sup, logPath, nil)
	if err != nil {
		return rec, nil, err
	}
	rec.Args = append([]string{bin}, args...)
	rec.Status = status
	return rec, exited, nil
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
// recorded, components that ran as pods, whose addresses are NodePorts,
// or an older tether that did not record it).
func previousAddrs(prev *State) []string {
	out := make([]string, len(addrNames()))
	if prev == nil || componentsAsPods(recordedTraits(prev)) {
		return out
	}
	if u, err := url.Parse(prev.GitURL); err == nil {
		out[0] = u.Host
	}
	out[1], out[2], out[3], out[4] = prev.Principal, prev.PrincipalHTTP, prev.PrincipalService, prev.PrincipalServiceHTTP
	return out
}

// localWorkload is what the sample runs when the components run as local
// processes. Where the nodes run no containers (embedded: kwok), the
// sample names tether's server with the placeholder image the components'
// manifests use too, and the API server validates the same Deployment kind
// runs. Real nodes without an image store tether could load its image
// into (an existing cluster) cannot run that image, which nothing
// publishes: they run a public one.
func localWorkload(t cluster.Traits) sample.Workload {
	if t.RunsContainers && !t.ImageStore {
		return sample.NginxWorkload
	}
	return sample.TetherWorkload(sample.DefaultImage)
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
	case standsInForSample(recordedTraits(prev)) && len(prev.SampleServices) != len(spokes):
		return "an older tether started them, without the sample's servers"
	case !supervised(prev.Processes):
		return "an older tether started them, without supervisors to restart them"
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

func supervised(procs []process.Record) bool {
	for _, p := range procs {
		if p.Status == "" {
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
