package cli

import (
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/klog/v2"

	"github.com/tether-dev/tether/cluster"
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
// on stderr would tear the screen. The UI's actions call the same domain
// functions as the commands, on that workbench.
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
	return tui.Options{
		Workbench: wb, LogFile: logPath, Logger: logger, Reporter: rep, CacheDir: g.cacheDir, Verbosity: g.verbosity,
	}, closeLog, nil
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
