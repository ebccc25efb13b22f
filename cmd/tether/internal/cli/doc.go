// Package cli holds tether's cobra commands, one of the two skins over the
// domain packages (the terminal UI, package tui, is the other). A command
// parses its flags, makes one call into the package that owns the
// operation, and prints what came back, adding the hints that name flags
// and commands. The UI calls the same functions, so the skins cannot
// drift apart: up and down are gitops/fleet's UpWorkbench and
// DownWorkbench (from cluster.BaseConfig plus up's flags), spokes are
// fleet.AddSpoke and RemoveSpoke, intercepts intercept.StartOnWorkbench
// and ReachOf, scenario runs scenarios/catalog.NewRunner, Application
// commands gitops/appops.
//
// Nothing here makes a cluster, chooses a provider or wires a
// traffic-agent. What the CLI knows of clusters is what it needs to talk
// to them and to word its output: kubeconfig contexts and clients for the
// clusters the workbench names, and which addresses a macOS or Windows host
// cannot route (hostReaches). Some commands are entry points of the
// processes tether starts itself (principal, agent, controller, git serve,
// sample serve, the hidden intercept agent, intercept service-proxy): they
// run their package's server until stopped.
//
// Files by command: up.go, down.go, status.go, doctor.go, prepare.go,
// spoke.go, app.go, intercept.go, scenario.go, sample.go, git.go, fleet.go
// (principal, agent), controller.go; tui.go opens the UI on a workbench
// whose progress and logs go to the UI and its log file; root.go holds the
// flags every command shares; hints.go maps the causes the domain packages
// mark on their errors (sentinels and typed errors: cluster.NoClustersError,
// fleet.ErrNotUp, intercept.FieldError...) to the command or flag to type,
// and appends it to every command's error (addHints wraps each RunE), so
// the libraries never name a flag or a command, in the manner of kind.
package cli
