package tui

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tether-dev/tether/tui/keys"
	"github.com/tether-dev/tether/tui/styles"
)

// common is what every screen shares, like soft-serve's common.Common.
type common struct {
	ctx    context.Context
	src    Source
	styles *styles.Styles
	keys   keys.KeyMap
	now    func() time.Time
	log    *slog.Logger
	// ops counts running Up/Down calls so Run can wait for them: a quit
	// cancels them, and their cleanup must finish before the process ends.
	ops *sync.WaitGroup
	// logFile is the UI's own log, offered on the Logs screen.
	logFile string
}
