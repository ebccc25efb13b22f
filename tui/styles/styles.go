package styles

import "github.com/charmbracelet/lipgloss"

// Styles are the styles the screens share.
type Styles struct {
	// Brand is the program name left of the tabs.
	Brand     lipgloss.Style
	Tab       lipgloss.Style
	ActiveTab lipgloss.Style
	// TabBar underlines the tab row, separating it from the screen.
	TabBar lipgloss.Style
	// Title heads a section within a screen.
	Title  lipgloss.Style
	Header lipgloss.Style
	// Selected marks the row under the cursor.
	Selected lipgloss.Style
	Muted    lipgloss.Style
	OK       lipgloss.Style
	Error    lipgloss.Style
	Warn     lipgloss.Style
	Spinner  lipgloss.Style
	// Flash is the one-line note about the last action, above the help.
	Flash lipgloss.Style
	// HelpKey and HelpDesc override bubbles/help's greys, which are too
	// faint on light terminals.
	HelpKey  lipgloss.Style
	HelpDesc lipgloss.Style
	HelpSep  lipgloss.Style
}

// New returns the default styles.
func New() *Styles {
	// Colours come in light/dark pairs because the UI cannot know the
	// user's terminal theme in advance; lipgloss picks the half that reads
	// on the background it detects.
	accent := lipgloss.AdaptiveColor{Light: "#5A2BD6", Dark: "#9F7AEA"}
	muted := lipgloss.AdaptiveColor{Light: "#6B6B6B", Dark: "#8A8A8A"}
	good := lipgloss.AdaptiveColor{Light: "#1B7F3B", Dark: "#4ADE80"}
	bad := lipgloss.AdaptiveColor{Light: "#B42318", Dark: "#F87171"}
	warn := lipgloss.AdaptiveColor{Light: "#9A6700", Dark: "#FACC15"}
	selBG := lipgloss.AdaptiveColor{Light: "#E9E3FF", Dark: "#3B2A6B"}
	text := lipgloss.AdaptiveColor{Light: "#1F1F1F", Dark: "#EDEDED"}
	return &Styles{
		Brand:     lipgloss.NewStyle().Bold(true).Foreground(accent).PaddingRight(2),
		Tab:       lipgloss.NewStyle().Foreground(muted).PaddingRight(1),
		ActiveTab: lipgloss.NewStyle().Bold(true).Foreground(text).PaddingRight(1),
		TabBar: lipgloss.NewStyle().
			BorderStyle(lipgloss.NormalBorder()).BorderBottom(true).BorderForeground(muted),
		Title:    lipgloss.NewStyle().Bold(true).Foreground(accent),
		Header:   lipgloss.NewStyle().Bold(true).Foreground(muted),
		Selected: lipgloss.NewStyle().Bold(true).Background(selBG).Foreground(text),
		Muted:    lipgloss.NewStyle().Foreground(muted),
		OK:       lipgloss.NewStyle().Foreground(good),
		Error:    lipgloss.NewStyle().Foreground(bad),
		Warn:     lipgloss.NewStyle().Foreground(warn),
		Spinner:  lipgloss.NewStyle().Foreground(accent),
		Flash:    lipgloss.NewStyle().Foreground(warn),
		HelpKey:  lipgloss.NewStyle().Foreground(text),
		HelpDesc: lipgloss.NewStyle().Foreground(muted),
		HelpSep:  lipgloss.NewStyle().Foreground(muted),
	}
}
