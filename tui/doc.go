// Package tui is tether's terminal UI: the workbench on one screen, the
// second skin over the domain functions the CLI calls. Its actions call
// them directly, with no callbacks from the tether command: `u` is
// gitops/fleet.UpWorkbench on what cluster.BaseConfig says when it is
// pressed (./tether.yaml, else the clusters the workbench has, else a hub
// and two spokes), `d` fleet.DownWorkbench, spokes fleet.AddSpoke and
// RemoveSpoke, the intercept form intercept.StartOnWorkbench, the
// Scenarios screen scenarios/catalog.NewRunner, Applications
// gitops/appops. The tether command only builds the workbench (its
// progress to a Reporter, its logs to a file) and redirects the
// process-wide loggers while the UI runs.
//
// The layout follows charmbracelet/soft-serve's pkg/ui: a root model owns
// the tab bar, the help line and one sub-model per screen (Clusters,
// Agents, Applications with its diff view, Logs, Intercepts, Scenarios);
// looks live in tui/styles and bindings in tui/keys. Everything slow
// (status probes, API calls, Up and Down, adding and removing spokes,
// diffs, intercepts, scenario runs, the commit of "make a change", reading
// logs) runs in a tea.Cmd that answers with a typed message, so the UI
// never waits on the network. Data comes through the Source interface,
// which tests replace with a fake. What lives in the hub's API server
// (Applications in every namespace, Agents) is watched: dynamic informers
// run while the hub is up, and each burst of changes, debounced, reaches
// the program as a liveMsg through a command that waits on Source.Live and
// is issued again after each one. A probe every few seconds covers the
// rest (processes, readiness, the spokes' Applications).
//
// The real Source (WorkbenchSource) is split by concern: source.go (the
// Source interface and its types), source_workbench.go (construction,
// status probe, clients, Close), source_watch.go (the hub's watches),
// source_apps.go (Applications and Agents), source_intercepts.go
// (intercepts, and those this process holds until it quits),
// source_scenarios.go (the catalog and the observer that turns a run into
// ScenarioEvents), source_up.go (up, down, spokes).
//
// Every screen fits the terminal down to 80×24, the size terminals open
// at: the tab bar shortens rather than wraps, the help line drops keys
// (never ? and q) and the full help wraps its columns into rows, tables
// leave out their least useful columns, and messages wrap rather than
// lose their ends. The golden files in testdata hold each screen at that
// size and at 100×30.
//
// Errors show in the domain packages' words; where the tether command adds
// the command to type for a marked cause (run `tether up`), the screen
// adds the key to press instead (hints.go, common.errText).
package tui
