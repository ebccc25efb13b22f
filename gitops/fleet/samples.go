package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/sample"
)

// waitSampleAnswers waits until the sample answers at every spoke's
// loopback address (embedded), which checks the chain a newcomer's first
// curl takes: service proxy, EndpointSlice, stand-in annotation, server.
// Any answer will do: an intercept of the sample may hold the Service.
func waitSampleAnswers(ctx context.Context, opts Options, st *State) error {
	if len(st.SampleServices) == 0 {
		return nil
	}
	step := opts.Progress.Start("check that the sample answers on every spoke")
	logs := filepath.Join(dir(opts.Workbench), "logs")
	for _, name := range st.Spokes {
		what := fmt.Sprintf("the sample of %s (service-proxy-%s.log, sample-%s.log)", name, name, name)
		if err := waitHTTP(ctx, what, "http://"+st.SampleServices[name]+"/", nil, logs); err != nil {
			step.Done(err)
			return err
		}
	}
	step.Done(nil)
	return nil
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
		if prev != nil && standsInForSample(recordedTraits(prev)) {
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
	return svcproxy.RoutesFile(wb.StateDir(), clusterName)
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
		return "", ErrNotUp
	}
	if t, err := cluster.ProviderTraits(st.Provider); err != nil || !t.ServiceProxy {
		return "", fmt.Errorf("on the %s provider this machine reaches %s/%s/%s:%d through a port-forward: kubectl --context tether-%s -n %s port-forward svc/%s 8080:%d, then http://127.0.0.1:8080/ (an intercept start of it opens one and prints it)",
			st.Provider, clusterName, ns, svc, port, clusterName, ns, svc, port)
	}
	path := routesPath(wb, clusterName)
	addr, err := svcproxy.LookupRoute(path, ns, svc, port)
	switch {
	case err == nil:
		return addr, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", &NoServiceProxyError{Cluster: clusterName, Path: path}
	case !errors.Is(err, svcproxy.ErrNotServed):
		return "", fmt.Errorf("read the service proxy's table of %s: %w", clusterName, err)
	}
	if clusterName == hubName(wb) {
		return "", &HubNamespaceError{Hub: clusterName, Namespace: ns, Served: deploy.DefaultNamespace, Service: svc, Port: port}
	}
	return "", fmt.Errorf("the service proxy of %s does not serve %s/%s port %d (yet): does the Service exist with that port? kubectl --context tether-%s -n %s get svc %s", clusterName, ns, svc, port, clusterName, ns, svc)
}

// hubName is the hub's name as the workbench records it, found by its
// role ("" when it cannot tell).
func hubName(wb *cluster.Workbench) string {
	hub, err := hubOf(wb)
	if err != nil {
		return ""
	}
	return hub.Name
}
