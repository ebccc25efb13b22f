package cli

import (
	"context"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/klog/v2"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/tui"
)

// runTUI opens the terminal UI on the workbench. The root command calls it
// when stdout is a terminal; everywhere else (pipes, CI) the bare command
// prints status and usage instead.
func runTUI(cmd *cobra.Command, g *globals) error {
	opts, closeLog, err := tuiOptions(g)
	if err != nil {
		return err
	}
	defer closeLog()
	defer redirectLogs(opts.Logger)()
	return tui.Run(cmd.Context(), opts)
}

// redirectLogs sends the process-wide loggers (log, slog's default and
// client-go's klog) to logger while the UI runs, because a line they print
// to stderr would tear the screen. It returns the undo. It lives here,
// not in the tui package: the command owns the process.
func redirectLogs(logger *slog.Logger) func() {
	prevSlog, prevOut, prevFlags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(logger)
	klog.SetSlogLogger(logger)
	return func() {
		klog.ClearLogger()
		slog.SetDefault(prevSlog)
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
	}
}

// tuiOptions builds the workbench the way g.workbench does, except that
// its progress goes to the UI and its logs to <state dir>/tui.log: a line
// on stderr would tear the screen.
func tuiOptions(g *globals) (tui.Options, func() error, error) {
	stateDir := g.stateDir
	if stateDir == "" {
		d, err := cluster.DefaultStateDir()
		if err != nil {
			return tui.Options{}, nil, err
		}
		stateDir = d
	}
	// The file can afford more than stderr: Info unless -vv asks for Debug.
	level := slog.LevelInfo
	if g.verbosity >= 2 {
		level = slog.LevelDebug
	}
	logPath := filepath.Join(stateDir, "tui.log")
	logger, closeLog, err := tui.OpenLog(logPath, level)
	if err != nil {
		return tui.Options{}, nil, err
	}
	rep := tui.NewReporter(nil)
	var cfg cluster.Config
	wb, err := cluster.New(cluster.Options{
		StateDir:   stateDir,
		CacheDir:   g.cacheDir,
		Kubeconfig: g.kubeconfig,
		Logger:     logger,
		Progress:   rep,
	})
	if err != nil {
		_ = closeLog()
		return tui.Options{}, nil, err
	}
	recorded, err := wb.RecordedConfig()
	if err == nil {
		cfg, err = tuiConfig(recorded)
	}
	if err != nil {
		_ = closeLog()
		return tui.Options{}, nil, err
	}
	// The UI's actions run as their commands do, with progress on the UI
	// and logs in the file; so does everything the commands print
	// (a line on stderr would tear the screen).
	ug := *g
	ug.out, ug.errw = logWriter{logger}, logWriter{logger}
	fo := func() fleet.Options { return fleet.Options{Workbench: wb, Progress: rep, Logger: logger} }
	return tui.Options{
		Workbench: wb, Config: cfg, LogFile: logPath, Logger: logger, Reporter: rep, CacheDir: g.cacheDir,
		AddSpoke: func(ctx context.Context, name string) error {
			return fleet.AddSpoke(ctx, fo(), cluster.ClusterConfig{Name: name})
		},
		RemoveSpoke: func(ctx context.Context, name string) error {
			_, err := fleet.RemoveSpoke(ctx, fo(), name)
			return err
		},
		StartIntercept: func(ctx context.Context, spec tui.InterceptSpec) (*intercept.Intercept, error) {
			return tuiStartIntercept(ctx, &ug, spec)
		},
		Scenarios:   tuiScenarios,
		RunScenario: tuiRunScenario(&ug),
	}, closeLog, nil
}

// tuiStartIntercept is `tether intercept start` for the UI: the same
// startIntercept, with the form's fields as its flags. The intercept must
// outlive the form's request, so it is not bound to ctx beyond the start;
// the UI stops it (Source.Close) when it quits.
func tuiStartIntercept(ctx context.Context, g *globals, spec tui.InterceptSpec) (*intercept.Intercept, error) {
	cmd := &cobra.Command{}
	cmd.SetContext(ctx)
	f := &interceptFlags{port: spec.Port, to: spec.To, headers: spec.Headers}
	st, err := startIntercept(cmd, g, spec.Target(), f, false)
	return st.Intercept, err
}

// logWriter sends what a command prints to the UI's log, a line per
// record.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l != "" {
			w.log.Info(l)
		}
	}
	return len(p), nil
}

// tuiConfig is what `u` brings up: what a bare `tether up` would, the
// defaults overlaid with ./tether.yaml when there is one.
func tuiConfig(recorded cluster.Config) (cluster.Config, error) {
	cfg, err := baseConfig("", recorded)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// interactive reports whether the bare command should open the UI: it
// draws on stdout and reads keys from stdin, so both must be terminals
// (`tether < /dev/null` or `tether | less` get status and usage instead).
func interactive(g *globals) bool {
	return isTerminal(g.out) && isTerminal(os.Stdin)
}

// isTerminal reports whether w is a terminal; the UI needs one, and output
// captured by a pipe or a test must stay plain text.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
