package kind

import (
	"context"
	"fmt"
	"log/slog"

	kindlog "sigs.k8s.io/kind/pkg/log"
)

// logAdapter sends kind's log lines to tether's logger, because a library
// must not print to the user's terminal. kind's V(0) status lines become
// Info; its debug levels become Debug.
type logAdapter struct {
	l *slog.Logger
}

var _ kindlog.Logger = logAdapter{}

func newLogAdapter(l *slog.Logger) logAdapter { return logAdapter{l: l} }

func (a logAdapter) Warn(message string) { a.l.Warn(message) }

func (a logAdapter) Warnf(format string, args ...any) { a.l.Warn(fmt.Sprintf(format, args...)) }

func (a logAdapter) Error(message string) { a.l.Error(message) }

func (a logAdapter) Errorf(format string, args ...any) { a.l.Error(fmt.Sprintf(format, args...)) }

func (a logAdapter) V(level kindlog.Level) kindlog.InfoLogger {
	sl := slog.LevelInfo
	if level > 0 {
		sl = slog.LevelDebug
	}
	return infoLogger{l: a.l, level: sl, v: int(level)}
}

type infoLogger struct {
	l     *slog.Logger
	level slog.Level
	v     int
}

func (i infoLogger) Info(message string) {
	i.l.Log(context.Background(), i.level, message, "v", i.v)
}

func (i infoLogger) Infof(format string, args ...any) {
	if i.Enabled() {
		i.Info(fmt.Sprintf(format, args...))
	}
}

func (i infoLogger) Enabled() bool { return i.l.Enabled(context.Background(), i.level) }
