package intercept

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/intercept/agentpod"
	"github.com/tether-dev/tether/intercept/record"
)

// Request is an intercept of a Service of a workbench cluster as a user
// asks for it: the flags of `tether intercept start`, or the UI's form.
type Request struct {
	// Target is <cluster>/<namespace>/<service>.
	Target string
	Port   int32
	// To is the local address intercepted connections go to.
	To string
	// Headers are NAME=VALUE pairs; none intercepts every connection.
	Headers []string
	// Name is the intercept's name; empty is <service>-<port>.
	Name string
	// AgentImage is the image of the traffic-agent pod on clusters that
	// are not embedded; empty is the image of the cluster's tether
	// Deployments (which `tether up` loads into kind's nodes).
	AgentImage string
	// NoProbe skips the check that something listens at To (intercept
	// run starts the listener after the intercept).
	NoProbe bool
	// Verbosity is passed on to the traffic-agent as -v flags.
	Verbosity int
	Logger    *slog.Logger
	// Exe is the tether binary an embedded cluster's traffic-agent runs
	// as; empty is this program.
	Exe string
}

// Started is an intercept StartOnWorkbench started.
type Started struct {
	Intercept *Intercept
	// Client is the intercepted cluster's (intercept run reads the
	// workload's environment through it).
	Client kubernetes.Interface
	// Swept names the leftovers of earlier intercepts cleaned up first;
	// set even when the start then failed.
	Swept []string
}

// StartOnWorkbench starts an intercept of a Service of one of wb's
// clusters, the way both `tether intercept start` and the UI do: it picks
// how the traffic-agent runs from the cluster's provider (a local process
// beside a kwok Pod on embedded clusters, reached over loopback; a Pod of
// tether's image elsewhere, reached through a port-forward), sweeps the
// leftovers of earlier intercepts, starts the intercept, and opens a way
// to the intercepted Service from this machine (Intercept.Reach). The
// intercept outlives ctx: the caller stops it.
func StartOnWorkbench(ctx context.Context, wb *cluster.Workbench, req Request) (Started, error) {
	if req.Logger == nil {
		req.Logger = slog.New(slog.DiscardHandler)
	}
	clusterName, ns, svc, err := ParseTarget(req.Target)
	if err != nil {
		return Started{}, err
	}
	if req.Port <= 0 {
		return Started{}, &FieldError{Field: "Port", After: " is required: the Service port to intercept"}
	}
	headers, err := ParseHeaders(req.Headers)
	if err != nil {
		return Started{}, err
	}
	cl, cfg, err := workbenchCluster(wb, clusterName)
	if err != nil {
		return Started{}, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Started{}, fmt.Errorf("client for cluster %s: %w", clusterName, err)
	}
	// One agent per Service: on embedded clusters its log is per Service
	// too (appended to by successive agents).
	logPath := filepath.Join(wb.StateDir(), "intercept", fmt.Sprintf("%s-%s-%s.log", clusterName, ns, svc))
	// Wired before the sweep: a cluster the agent cannot run on is
	// refused before anything in it is touched.
	opts, _, err := agentOptions(ctx, cl, cs, cfg, req, wb.StateDir(), logPath)
	if err != nil {
		return Started{}, err
	}
	st := Started{Client: cs}
	if swept, err := Sweep(ctx, cs); err != nil {
		req.Logger.Warn("sweep of earlier intercepts", "err", err)
	} else if len(swept) > 0 {
		req.Logger.Info("cleaned up leftovers of earlier intercepts", "cluster", clusterName, "leftovers", strings.Join(swept, ", "))
		st.Swept = swept
	}
	st.Intercept, err = Start(ctx, opts, Spec{
		Cluster: clusterName, Namespace: ns, Service: svc, Port: req.Port, To: req.To, Headers: headers, Name: req.Name, NoProbe: req.NoProbe,
	})
	return st, err
}

// workbenchCluster is the workbench's record of cluster name and its REST
// config.
func workbenchCluster(wb *cluster.Workbench, name string) (cluster.Cluster, *rest.Config, error) {
	cls, err := wb.Clusters()
	if err != nil {
		return cluster.Cluster{}, nil, err
	}
	var names []string
	for _, c := range cls {
		if c.Name == name {
			cfg, err := wb.RESTConfig(name)
			return c, cfg, err
		}
		names = append(names, c.Name)
	}
	if len(names) == 0 {
		return cluster.Cluster{}, nil, fmt.Errorf("no cluster %q: %w", name, &cluster.NoClustersError{})
	}
	return cluster.Cluster{}, nil, fmt.Errorf("no cluster %q in the workbench (clusters: %s)", name, strings.Join(names, ", "))
}

// podAgentTimeout bounds the wait for a traffic-agent pod to be ready: it
// is scheduled, its container started and, with an agent image, its image
// pulled, which the 30 s default of a local process does not allow for.
const podAgentTimeout = 60 * time.Second

// agentOptions wires the traffic-agent for cluster cl. On embedded
// clusters it is a local process beside a kwok Pod, reached over loopback,
// and logs to logPath; this machine reaches the Service through the
// cluster's service proxy. Elsewhere it is a bare Pod of tether's image
// (req.AgentImage, or the one the cluster's tether Deployments run),
// reached through a port-forward, and a second port-forward reaches the
// Service; the Launcher is returned for inspection.
func agentOptions(ctx context.Context, cl cluster.Cluster, cs kubernetes.Interface, cfg *rest.Config, req Request, stateDir, logPath string) (Options, *agentpod.Launcher, error) {
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := Options{Client: cs, Embedded: !cl.Traits.RunsContainers, Logger: log}
	var verbose []string
	if req.Verbosity > 0 {
		verbose = []string{"-" + strings.Repeat("v", req.Verbosity)}
	}
	if opts.Embedded {
		if req.AgentImage != "" {
			return opts, nil, &FieldError{Field: "AgentImage", After: fmt.Sprintf(": cluster %s is embedded, where the traffic-agent is a local process, not a pod; leave it out", cl.Name)}
		}
		exe := req.Exe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return opts, nil, fmt.Errorf("find the tether binary to run the traffic-agent: %w", err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
			return opts, nil, err
		}
		argv := append([]string{exe, "intercept", "agent", "--cluster-kubeconfig", cl.AdminKubeconfig, "--embedded"}, verbose...)
		opts.Launch = ExecAgent(argv, logPath)
		opts.Reach = func(ctx context.Context, rec record.Record) (string, func(), error) {
			url, err := svcproxy.Reach(ctx, cs, svcproxy.RoutesFile(stateDir, rec.Cluster), rec.Namespace, rec.Service, rec.Port)
			return url, func() {}, err
		}
		return opts, nil, nil
	}
	image := req.AgentImage
	if image == "" {
		var err error
		if image, err = tetherImage(ctx, cs, cl); err != nil {
			return opts, nil, err
		}
	}
	pf, err := agentpod.NewPortForward(cfg)
	if err != nil {
		return opts, nil, err
	}
	pf.Logger = log
	l := &agentpod.Launcher{Client: cs, Options: agentpod.Options{Image: image, Args: verbose}, Logger: log}
	opts.Launch, opts.DialAgent, opts.AgentTimeout = l.Launch, pf.Dial, podAgentTimeout
	opts.Reach = func(ctx context.Context, rec record.Record) (string, func(), error) {
		f, err := agentpod.ForwardService(cs, pf, rec.Namespace, rec.Service, rec.Port, "127.0.0.1:0", log)
		if err != nil {
			return "", nil, err
		}
		url := svcproxy.ReachAddr(ctx, cs, rec.Namespace, rec.Service, rec.Port, f.Addr())
		// intercept list and the UI, other processes, show it from here.
		forget := RecordReach(stateDir, rec, url)
		return url, func() { f.Close(); forget() }, nil
	}
	log.Info("traffic-agent runs as a pod", "cluster", cl.Name, "provider", cl.Provider, "image", image)
	return opts, l, nil
}

// tetherImage reads tether's image from the cluster's own tether
// Deployment (the principal's on the hub, the agent's on a spoke): the
// fleet does not record it, and the image the components run is one the
// nodes have (`tether up` loads it into kind's nodes, where no registry
// serves it). The Deployments' names are gitops/deploy's, the one place
// they are given.
func tetherImage(ctx context.Context, cs kubernetes.Interface, cl cluster.Cluster) (string, error) {
	ns := deploy.DefaultNamespace
	for _, name := range []string{deploy.PrincipalName, deploy.AgentName, deploy.GitName} {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", &FieldError{Field: "AgentImage", Before: fmt.Sprintf("read deployment %s/%s of cluster %s for tether's image (or give ", ns, name, cl.Name), After: fmt.Sprintf("): %v", err), Err: err}
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Image != "" {
				return c.Image, nil
			}
		}
	}
	return "", fmt.Errorf("intercepts on %s clusters run tether's image, which bringing the GitOps system up loads (%w: "+
		"cluster %s has no deployment %s/%s or %s/%s to read the image from)",
		cl.Provider, ErrNoAgentImage, cl.Name, ns, deploy.PrincipalName, ns, deploy.AgentName)
}
