package tui

import (
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/tether-dev/tether/tui/styles"
)

// busySpinner is a screen's spinner that ticks only while the screen has
// something running: ticks stop by themselves once it is idle, so an idle
// UI does not redraw.
type busySpinner struct {
	model    spinner.Model
	spinning bool
}

func newBusySpinner(st *styles.Styles) busySpinner {
	return busySpinner{model: spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(st.Spinner))}
}

// start begins the ticks if they are not running.
func (s *busySpinner) start() tea.Cmd {
	if s.spinning {
		return nil
	}
	s.spinning = true
	return s.model.Tick
}

// tick advances on this spinner's own ticks (other screens' are ignored)
// and lets them lapse when busy is false.
func (s *busySpinner) tick(msg spinner.TickMsg, busy bool) tea.Cmd {
	if msg.ID != s.model.ID() {
		return nil
	}
	if !busy {
		s.spinning = false
		return nil
	}
	var cmd tea.Cmd
	s.model, cmd = s.model.Update(msg)
	return cmd
}

func (s *busySpinner) View() string { return s.model.View() }
