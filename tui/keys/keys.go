package keys

import "github.com/charmbracelet/bubbles/key"

// KeyMap is every binding of the UI. Screens enable only the ones they use
// in their help; the root handles the global ones.
type KeyMap struct {
	// Global.
	Quit    key.Binding
	Help    key.Binding
	NextTab key.Binding
	PrevTab key.Binding
	// Screen jumps straight to a screen by its number.
	Screen key.Binding

	// Lists and viewers.
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Top      key.Binding
	Bottom   key.Binding
	Open     key.Binding
	Back     key.Binding

	// Clusters.
	WorkbenchUp   key.Binding
	WorkbenchDown key.Binding
	AddSpoke      key.Binding
	RemoveSpoke   key.Binding

	// Applications.
	Sync    key.Binding
	Refresh key.Binding
	// MakeChange commits an edit to the sample repository.
	MakeChange key.Binding
	// Diff shows what a sync of the open Application would apply.
	Diff key.Binding

	// Intercepts.
	NewIntercept  key.Binding
	StopIntercept key.Binding

	// Scenarios.
	RunScenario key.Binding

	// Forms and prompts.
	NextField key.Binding
	PrevField key.Binding
	Submit    key.Binding
	Cancel    key.Binding

	// Logs.
	Follow key.Binding
}

// New returns the default bindings.
func New() KeyMap {
	return KeyMap{
		Quit:    key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		Help:    key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "more keys")),
		NextTab: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next screen")),
		PrevTab: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous screen")),
		Screen:  key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6"), key.WithHelp("1-6", "go to screen")),

		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "f", " "), key.WithHelp("pgdn", "page down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "top")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "bottom")),
		Open:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Back:     key.NewBinding(key.WithKeys("esc", "backspace"), key.WithHelp("esc", "back")),

		WorkbenchUp:   key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "bring up")),
		WorkbenchDown: key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "bring down")),
		AddSpoke:      key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add spoke")),
		RemoveSpoke:   key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "remove spoke")),

		Sync:    key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sync")),
		Refresh: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh")),

		MakeChange: key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "make a change")),
		Diff:       key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "diff")),

		NewIntercept:  key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new intercept")),
		StopIntercept: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "stop")),

		RunScenario: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "run")),

		NextField: key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab", "next field")),
		PrevField: key.NewBinding(key.WithKeys("shift+tab", "up"), key.WithHelp("shift+tab", "previous field")),
		Submit:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "confirm")),
		Cancel:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),

		Follow: key.NewBinding(key.WithKeys("F"), key.WithHelp("F", "follow")),
	}
}
