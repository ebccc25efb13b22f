package cli

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

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
	return tui.Run(cmd.Context(), opts)
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
	cfg, err := tuiConfig()
	if err != nil {
		return tui.Options{}, nil, err
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
	return tui.Options{Workbench: wb, Config: cfg, LogFile: logPath, Logger: logger, Reporter: rep}, closeLog, nil
}

// tuiConfig is what `u` brings up: what a bare `tether up` would, the
// defaults overlaid with ./tether.yaml when there is one.
func tuiConfig() (cluster.Config, error) {
	cfg := cluster.DefaultConfig()
	if fileExists("tether.yaml") {
		loaded, err := cluster.LoadConfig("tether.yaml")
		if err != nil {
			return cfg, err
		}
		cfg = loaded
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
