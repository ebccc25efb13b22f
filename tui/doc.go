// Package tui is tether's terminal UI: the workbench on one screen, as a
// front end over the same packages the CLI uses.
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
// Every screen fits the terminal down to 80×24, the size terminals open
// at: the tab bar shortens rather than wraps, the help line drops keys
// (never ? and q) and the full help wraps its columns into rows, tables
// leave out their least useful columns, and messages wrap rather than
// lose their ends. The golden files in testdata hold each screen at that
// size and at 100×30.
package tui
