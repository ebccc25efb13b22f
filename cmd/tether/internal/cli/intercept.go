package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/trafficagent"
)

func newIntercept(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "intercept",
		Short: "Carry a Service's traffic to a process on this machine, and let it reach the cluster",
		Long: `intercept takes over a Service port of a workbench cluster: in-cluster clients'
connections (all of them, or only HTTP requests carrying --header) reach a
process on this machine, and that process reaches in-cluster Services by
name through an HTTP/CONNECT proxy. Everything is undone on Ctrl-C, on
'intercept stop', and within 15 s if the workbench dies.`,
	}
	cmd.AddCommand(newInterceptStart(g), newInterceptRun(g), newInterceptList(g), newInterceptStop(g),
		newInterceptUninstall(g), newInterceptAgent(g), newInterceptServiceProxy(g))
	return cmd
}

type interceptFlags struct {
	port    int32
	to      string
	headers []string
	name    string
	// agentImage is the image of the traffic-agent pod on clusters that
	// are not embedded; empty: the image of the cluster's tether
	// Deployments.
	agentImage string
}

func (f *interceptFlags) register(cmd *cobra.Command) {
	cmd.Flags().Int32Var(&f.port, "port", 0, "Service port to intercept (required)")
	cmd.Flags().StringVar(&f.to, "to", "", "local address intercepted connections go to, e.g. 127.0.0.1:8080 (required)")
	cmd.Flags().StringArrayVar(&f.headers, "header", nil, "NAME=VALUE: intercept only HTTP requests carrying this header (repeatable; none: every connection)")
	cmd.Flags().StringVar(&f.name, "name", "", "intercept name (default <service>-<port>)")
	// pflag shows the first `quoted` word of a usage as the flag's value
	// placeholder: only the placeholder is quoted so.
	cmd.Flags().StringVar(&f.agentImage, "agent-image", "", "tether `image` the traffic-agent pod runs on kind and existing clusters, e.g. one pushed to a registry their nodes pull from (default: the image of the cluster's tether Deployments, which 'tether up' loads)")
}

// clusterClient returns a clientset for the workbench's cluster name.
func clusterClient(g *globals, name string) (kubernetes.Interface, error) {
	wb, err := g.workbench()
	if err != nil {
		return nil, err
	}
	cls, err := wb.Clusters()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range cls {
		if c.Name == name {
			cfg, err := wb.RESTConfig(name)
			if err != nil {
				return nil, err
			}
			return kubernetes.NewForConfig(cfg)
		}
		names = append(names, c.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no cluster %q: the workbench has no clusters (run `tether up`)", name)
	}
	return nil, fmt.Errorf("no cluster %q in the workbench (clusters: %s)", name, strings.Join(names, ", "))
}

// startIntercept is `intercept start` and `intercept run` up to the
// intercept: the flags go to intercept.StartOnWorkbench, and what it swept
// is said on stderr.
func startIntercept(cmd *cobra.Command, g *globals, target string, f *interceptFlags, noProbe bool) (intercept.Started, error) {
	wb, err := g.workbench()
	if err != nil {
		return intercept.Started{}, err
	}
	st, err := intercept.StartOnWorkbench(cmd.Context(), wb, intercept.Request{
		Target: target, Port: f.port, To: f.to, Headers: f.headers, Name: f.name, AgentImage: f.agentImage,
		NoProbe: noProbe, Verbosity: g.verbosity, Logger: g.logger(),
	})
	if len(st.Swept) > 0 {
		fmt.Fprintf(g.errw, "cleaned up leftovers of earlier intercepts: %s\n", strings.Join(st.Swept, ", "))
	}
	return st, err
}

// reachOf is where this machine reaches the Service of an intercept for
// intercept list (intercept.ReachOf); "-" when there is no way known.
func reachOf(ctx context.Context, g *globals, cs kubernetes.Interface, rec record.Record) string {
	wb, err := g.workbench()
	if err != nil {
		return "-"
	}
	url, err := intercept.ReachOf(ctx, wb.StateDir(), cs, rec)
	if err != nil {
		return "-"
	}
	return url
}

func describe(rec record.Record) string {
	if rec.Global() {
		return "every connection"
	}
	var hs []string
	for k, v := range rec.Headers {
		hs = append(hs, k+"="+v)
	}
	sort.Strings(hs)
	return "HTTP requests with " + strings.Join(hs, ", ")
}

func stopQuietly(i *intercept.Intercept) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return i.Stop(ctx)
}

func newInterceptStart(g *globals) *cobra.Command {
	f := &interceptFlags{}
	cmd := &cobra.Command{
		Use:   "start <cluster>/<namespace>/<service> --port PORT --to ADDRESS [--header NAME=VALUE]...",
		Short: "Intercept a Service port until Ctrl-C",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := startIntercept(cmd, g, args[0], f, false)
			if err != nil {
				return err
			}
			i := st.Intercept
			rec := i.Record()
			fmt.Fprintf(g.out, "intercept %s: %s port %d → %s (%s)\n", rec.Name, args[0], rec.Port, f.to, describe(rec))
			if r := i.Reach(); r != "" {
				fmt.Fprintf(g.out, "reach %s port %d from this machine: %s\n", args[0], rec.Port, r)
			}
			fmt.Fprintf(g.out, "outbound proxy: HTTP_PROXY=http://%s\n", i.ProxyAddr())
			fmt.Fprintln(g.out, "press Ctrl-C to stop")
			werr := i.Wait(cmd.Context())
			serr := stopQuietly(i)
			if errors.Is(werr, intercept.ErrStopped) {
				fmt.Fprintf(g.out, "intercept %s was stopped\n", rec.Name)
				return serr
			}
			switch {
			case werr != nil || serr != nil:
			case i.Restored():
				fmt.Fprintf(g.out, "intercept %s stopped; %s/%s is as it was\n", rec.Name, rec.Namespace, rec.Service)
			default:
				fmt.Fprintf(g.out, "intercept %s stopped; other intercepts of %s/%s keep running\n", rec.Name, rec.Namespace, rec.Service)
			}
			return errors.Join(werr, serr)
		},
	}
	f.register(cmd)
	return cmd
}

func newInterceptRun(g *globals) *cobra.Command {
	f := &interceptFlags{}
	cmd := &cobra.Command{
		Use:   "run <cluster>/<namespace>/<service> --port PORT --to ADDRESS [--header NAME=VALUE]... -- COMMAND [ARGS...]",
		Short: "Run a command with the workload's environment while its Service is intercepted",
		Long: `run starts the intercept, then COMMAND with the intercepted workload's env and
envFrom (resolved through the API) and HTTP_PROXY/HTTPS_PROXY pointing at the
outbound proxy. COMMAND should listen at --to. The intercept ends with it.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("usage: tether intercept run <target> --port PORT --to ADDRESS -- COMMAND [ARGS...]")
			}
			st, err := startIntercept(cmd, g, args[0], f, true)
			if err != nil {
				return err
			}
			i := st.Intercept
			rec := i.Record()
			env, err := intercept.WorkloadEnv(cmd.Context(), st.Client, &rec)
			if err != nil {
				return errors.Join(err, stopQuietly(i))
			}
			fmt.Fprintf(g.errw, "intercept %s: %s port %d → %s (%s)\n", rec.Name, args[0], rec.Port, f.to, describe(rec))
			if r := i.Reach(); r != "" {
				fmt.Fprintf(g.errw, "reach %s port %d from this machine: %s\n", args[0], rec.Port, r)
			}
			c := exec.Command(args[1], args[2:]...)
			c.Env = append(append(os.Environ(), env...), i.ProxyEnv()...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, g.out, g.errw
			if err := c.Start(); err != nil {
				return errors.Join(err, stopQuietly(i))
			}
			exited := make(chan error, 1)
			go func() { exited <- c.Wait() }()
			var runErr error
			select {
			case runErr = <-exited:
			case <-cmd.Context().Done():
				_ = c.Process.Signal(os.Interrupt)
				runErr = <-exited
			case <-waitChan(i):
				_ = c.Process.Signal(os.Interrupt)
				<-exited
				runErr = errors.New("intercept ended before the command")
			}
			return errors.Join(runErr, stopQuietly(i))
		},
	}
	f.register(cmd)
	return cmd
}

func waitChan(i *intercept.Intercept) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- i.Wait(context.Background()) }()
	return ch
}

// eachCluster runs fn on every workbench cluster.
func eachCluster(g *globals, fn func(name string, cs kubernetes.Interface) error) error {
	wb, err := g.workbench()
	if err != nil {
		return err
	}
	cls, err := wb.Clusters()
	if err != nil {
		return err
	}
	if len(cls) == 0 {
		return errors.New("the workbench has no clusters (run `tether up`)")
	}
	var errs []error
	for _, c := range cls {
		cfg, err := wb.RESTConfig(c.Name)
		if err == nil {
			var cs kubernetes.Interface
			if cs, err = kubernetes.NewForConfig(cfg); err == nil {
				err = fn(c.Name, cs)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

func newInterceptList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List intercepts in the workbench's clusters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCLUSTER\tSERVICE\tPORT\tROUTES\tWORKBENCH\tCONNECTIONS\tREQUESTS\tFROM THIS MACHINE")
			err := eachCluster(g, func(name string, cs kubernetes.Interface) error {
				list, err := intercept.List(cmd.Context(), cs)
				for _, s := range list {
					state := "alive"
					if !s.Alive {
						state = "gone (lease expired)"
					}
					// A global intercept routes connections, not requests.
					reqs := "-"
					if !s.Global() {
						reqs = strconv.FormatInt(s.Requests, 10)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%d\t%s\t%s\t%d\t%s\t%s\n", s.Name, name, s.Namespace, s.Service, s.Port, describe(s.Record), state, s.Connections, reqs, reachOf(cmd.Context(), g, cs, s.Record))
				}
				return err
			})
			tw.Flush()
			return err
		},
	}
}

func newInterceptStop(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop <name>",
		Short: "Stop an intercept: its Service is restored as it was",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			found := false
			err := eachCluster(g, func(_ string, cs kubernetes.Interface) error {
				err := intercept.StopByName(cmd.Context(), cs, args[0])
				if errors.Is(err, intercept.ErrNotFound) {
					return nil
				}
				found = found || err == nil
				return err
			})
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("no intercept named %q (see `tether intercept list`)", args[0])
			}
			fmt.Fprintf(g.out, "intercept %s stopped\n", args[0])
			return nil
		},
	}
}

func newInterceptUninstall(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Remove everything tether put into the clusters for intercepts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return uninstallIntercepts(cmd.Context(), g.out, func(fn func(string, kubernetes.Interface) error) error {
				return eachCluster(g, fn)
			})
		},
	}
}

// uninstallIntercepts runs intercept.Uninstall on every cluster each
// visits and says what it removed where, or that there was nothing to
// remove: "uninstalled" after a run that found nothing would send the
// user looking for what it was.
func uninstallIntercepts(ctx context.Context, out io.Writer, each func(func(string, kubernetes.Interface) error) error) error {
	var clean []string
	found := false
	err := each(func(name string, cs kubernetes.Interface) error {
		done, err := intercept.Uninstall(ctx, cs)
		if len(done) > 0 {
			found = true
			fmt.Fprintf(out, "%s: %s\n", name, strings.Join(done, ", "))
		} else if err == nil {
			clean = append(clean, name)
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case !found:
		fmt.Fprintf(out, "nothing to uninstall: no intercept, traffic-agent or taken-over Service in %s\n", strings.Join(clean, ", "))
	default:
		fmt.Fprintln(out, "intercepts uninstalled")
	}
	return nil
}

func newInterceptAgent(g *globals) *cobra.Command {
	var kubeconfig, rec, listenHost, control string
	var embedded bool
	cmd := &cobra.Command{
		Use:    "agent --record JSON",
		Short:  "Run a traffic-agent (started by `intercept start`, not by hand)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r record.Record
			if err := jsonUnmarshal(rec, &r); err != nil {
				return fmt.Errorf("--record: %w", err)
			}
			var loader clientcmd.ClientConfig
			if kubeconfig != "" {
				loader = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}, &clientcmd.ConfigOverrides{})
			} else {
				loader = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
			}
			cfg, err := loader.ClientConfig()
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			// The agent must outlive a Ctrl-C sent to the workbench's
			// terminal only if it was started in its own session (it is);
			// its own SIGTERM still means: fail open and clean up.
			return trafficagent.Run(cmd.Context(), trafficagent.Options{
				Client: cs, Record: r, Token: os.Getenv(intercept.TokenEnv), Embedded: embedded,
				ListenHost: listenHost, ControlAddr: control, Logger: g.logger(),
			})
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "cluster-kubeconfig", "", "kubeconfig of the cluster (default: in-cluster or $KUBECONFIG)")
	cmd.Flags().StringVar(&rec, "record", "", "the intercept record (JSON)")
	cmd.Flags().BoolVar(&embedded, "embedded", false, "run beside a kwok pod on an embedded cluster")
	cmd.Flags().StringVar(&listenHost, "listen-host", "127.0.0.1", "host the Service ports are served on")
	cmd.Flags().StringVar(&control, "control", "127.0.0.1:0", "address the workbench's session connects to")
	return cmd
}

func newInterceptServiceProxy(g *globals) *cobra.Command {
	var (
		mapping, namespace string
		pins               []string
	)
	cmd := &cobra.Command{
		Use:   "service-proxy <cluster>",
		Short: "Serve every Service of an embedded cluster on a loopback port (a user-space kube-proxy)",
		Long: `Serve every Service of an embedded cluster on a loopback port (a user-space kube-proxy).

Each TCP Service port gets a loopback listener whose connections go to the
Service's current endpoints (pods annotated with tether.dev/local-address).
--pin serves a Service port on a fixed address, so it can be handed out
before the proxy runs; tether up pins the principal's Service this way and
gives the agents that address. When an endpoint leaves a Service, the
connections proxied to it are closed so that clients reconnect and follow
the new routing (an intercept's takeover, and its end).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pinned := map[svcproxy.ServicePort]string{}
			for _, s := range pins {
				k, addr, err := svcproxy.ParsePin(s)
				if err != nil {
					return err
				}
				pinned[k] = addr
			}
			cs, err := clusterClient(g, args[0])
			if err != nil {
				return err
			}
			p := svcproxy.New(svcproxy.Options{Client: cs, Namespace: namespace, MappingFile: mapping, Pinned: pinned, Logger: g.logger()})
			errc := make(chan error, 1)
			go func() { errc <- p.Run(cmd.Context()) }()
			select {
			case <-p.Ready():
			case err := <-errc:
				return err
			}
			for _, r := range p.Routes() {
				fmt.Fprintf(g.out, "%s/%s:%d\t%s\n", r.Namespace, r.Service, r.Port, r.Address)
			}
			return <-errc
		},
	}
	cmd.Flags().StringVar(&mapping, "mapping-file", "", "write the Service → loopback address table here (JSON), kept current")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "serve only this namespace's Services (default: all)")
	cmd.Flags().StringArrayVar(&pins, "pin", nil, "NAMESPACE/SERVICE:PORT=HOST:PORT: serve this Service port on this fixed address (repeatable)")
	return cmd
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
