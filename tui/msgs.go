package tui

import (
	"time"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// Every background result reaches the models as one of these messages.

// statusMsg is the result of one probe of the workbench.
type statusMsg struct {
	snap Snapshot
	err  error
}

// statusTickMsg asks for the next probe.
type statusTickMsg struct{}

// liveMsg is one Live from the Source's watches: the Applications and
// Agents screens render from it instead of listing.
type liveMsg struct{ live Live }

// Steps of a running Up or Down, from the Reporter.
type stepStartMsg struct {
	id    int
	title string
	at    time.Time
}

type stepUpdateMsg struct {
	id     int
	detail string
}

type stepDoneMsg struct {
	id  int
	err error
	at  time.Time
}

// opDoneMsg ends an Up or Down.
type opDoneMsg struct {
	op  string
	err error
	at  time.Time
}

// appsMsg carries one listing of every cluster's Applications.
type appsMsg struct {
	results []clusterApps
}

type clusterApps struct {
	cluster string
	apps    []v1alpha1.Application
	err     error
}

// appActionMsg ends a sync or refresh request.
type appActionMsg struct {
	action, cluster, app string
	err                  error
}

// agentsMsg carries one listing of the hub's Agents.
type agentsMsg struct {
	agents []v1alpha1.Agent
	err    error
}

// changeMsg ends a "make a change": the commit that scales the sample.
type changeMsg struct {
	replicas int
	sha      string
	err      error
}

// logDataMsg carries what a log file gained since the last read. gen ties
// it to the file that was open when the read started, so a read finishing
// after the user switched files is ignored.
type logDataMsg struct {
	gen int
	// reset means data replaces what is shown (first read, or the file was
	// truncated or replaced).
	reset  bool
	data   []byte
	offset int64
	err    error
}

// logTickMsg asks for the next read of the followed log.
type logTickMsg struct{ gen int }
