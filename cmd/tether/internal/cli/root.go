package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
)

// globals are the flags every command shares.
type globals struct {
	stateDir   string
	cacheDir   string
	kubeconfig string
	verbosity  int
	out, errw  io.Writer
	// goos is the operating system up prints addresses for; tests set it.
	goos string
}

// New returns the root command writing to out and errw.
func New(out, errw io.Writer) *cobra.Command {
	g := &globals{out: out, errw: errw, goos: runtime.GOOS}
	root := &cobra.Command{
		Use:   "tether",
		Short: "A workbench for the hub-and-spoke GitOps system: clusters, principal, agents, intercepts",
		Long: `tether gives you a hub cluster and spoke clusters on this machine, the GitOps
principal and agents running on them, and intercepts that carry in-cluster
traffic to a process on your laptop.

Start with:  tether up        (hub + 2 spokes; kind with Docker, embedded without)
Then:        tether status    kubectl --context tether-spoke-1 get nodes
Finally:     tether down`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interactive(g) {
				return runTUI(cmd, g)
			}
			// Without a terminal (pipes, CI), the bare command shows where
			// things stand and how to go on.
			if err := runStatus(cmd, g); err != nil {
				fmt.Fprintln(g.errw, "status:", hint(err))
			}
			fmt.Fprintln(g.out)
			return cmd.Usage()
		},
	}
	root.SetOut(out)
	root.SetErr(errw)
	pf := root.PersistentFlags()
	pf.StringVar(&g.stateDir, "state-dir", "", "folder for the workbench's state, CA and cluster data (default $TETHER_STATE_DIR or ~/.local/state/tether)")
	pf.StringVar(&g.cacheDir, "cache-dir", "", "folder for compiled control-plane binaries (default $TETHER_CACHE_DIR or ~/.cache/tether)")
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig file to merge tether-* contexts into (default: first of $KUBECONFIG, else ~/.kube/config)")
	pf.CountVarP(&g.verbosity, "verbose", "v", "log more (-v info, -vv debug)")
	root.AddCommand(newUp(g), newDown(g), newStatus(g), newDoctor(g), newController(g), newApp(g), newGit(g), newPrincipal(g), newAgent(g), newPrepare(g), newIntercept(g), newSpoke(g), newScenario(g), newSample(g), newSupervise(g))
	addHints(root)
	return root
}

func (g *globals) logger() *slog.Logger {
	level := slog.LevelWarn
	switch {
	case g.verbosity >= 2:
		level = slog.LevelDebug
	case g.verbosity == 1:
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(g.errw, &slog.HandlerOptions{Level: level}))
}

func (g *globals) workbench() (*cluster.Workbench, error) {
	return cluster.New(cluster.Options{
		StateDir:   g.stateDir,
		CacheDir:   g.cacheDir,
		Kubeconfig: g.kubeconfig,
		Logger:     g.logger(),
		Progress:   g.progress(),
	})
}

// progress renders steps as lines: they work on terminals and in CI logs
// alike; updates are throttled so a long build prints a line every few
// seconds.
func (g *globals) progress() progress.Reporter {
	return progress.Lines(g.errw, 5*time.Second)
}

// cache is the cache folder the components keep Git copies and builds in:
// --cache-dir, else the default the workbench uses.
func (g *globals) cache() (string, error) {
	if g.cacheDir != "" {
		return g.cacheDir, nil
	}
	return cluster.DefaultCacheDir()
}

// fileExists is used to pick up ./tether.yaml without making it required.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
