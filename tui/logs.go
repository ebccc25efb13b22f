package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// pollEvery is how often a followed log is read again. Polling a file is
// cheap and works the same for every component and platform, unlike
// change notifications.
const pollEvery = 500 * time.Millisecond

// keepLines caps what a followed log keeps in memory.
const keepLines = 5000

// logsModel is the Logs screen: pick a component's log, then follow it.
type logsModel struct {
	c             *common
	width, height int

	sources []logSource
	cursor  int
	// chosen is the path the user moved the cursor to; the list is rebuilt
	// on every probe and the cursor must stay on it.
	chosen string

	// open is the followed source; nil shows the list.
	open *logSource
	// gen numbers each opening, so reads started for an earlier one are
	// dropped when they land.
	gen    int
	offset int64
	lines  []string
	err    error
	view   viewport.Model
}

type logSource struct {
	label string
	path  string
}

func newLogs(c *common) *logsModel {
	vp := viewport.New(0, 0)
	k := c.keys
	vp.KeyMap = viewport.KeyMap{Up: k.Up, Down: k.Down, PageUp: k.PageUp, PageDown: k.PageDown}
	m := &logsModel{c: c, view: vp}
	m.setSources(nil)
	return m
}

func (m *logsModel) Title() string { return "Logs" }

func (m *logsModel) SetSize(w, h int) {
	m.width, m.height = w, h
	m.view.Width, m.view.Height = w, max(1, h-1)
	m.render()
}

func (m *logsModel) ShortHelp() []key.Binding {
	k := m.c.keys
	if m.open != nil {
		return []key.Binding{k.Up, k.Down, k.PageDown, k.Follow, k.Back}
	}
	return []key.Binding{k.Up, k.Down, k.Open}
}

func (m *logsModel) FullHelp() [][]key.Binding {
	k := m.c.keys
	return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Top, k.Follow, k.Open, k.Back}}
}

// setSources lists the logs there are: every embedded control-plane
// process (kind and existing clusters keep theirs elsewhere), the GitOps
// components run as processes, and the UI's own log.
func (m *logsModel) setSources(snap *Snapshot) {
	m.sources = m.sources[:0]
	if snap != nil {
		for _, c := range snap.Clusters {
			for _, p := range c.Processes {
				if p.Log != "" {
					m.sources = append(m.sources, logSource{label: c.Name + "/" + p.Name, path: p.Log})
				}
			}
		}
		for _, p := range snap.Components {
			if p.Log != "" {
				m.sources = append(m.sources, logSource{label: "gitops/" + p.Name, path: p.Log})
			}
		}
	}
	if m.c.logFile != "" {
		m.sources = append(m.sources, logSource{label: "tether (this UI)", path: m.c.logFile})
	}
	m.cursor = 0
	for i, s := range m.sources {
		if s.path == m.chosen {
			m.cursor = i
		}
	}
}

func (m *logsModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		if msg.err == nil {
			m.setSources(&msg.snap)
		}
	case logDataMsg:
		if m.open == nil || msg.gen != m.gen {
			return nil
		}
		m.apply(msg)
		gen := m.gen
		return tea.Tick(pollEvery, func(time.Time) tea.Msg { return logTickMsg{gen: gen} })
	case logTickMsg:
		if m.open == nil || msg.gen != m.gen {
			return nil
		}
		return m.read()
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

func (m *logsModel) key(msg tea.KeyMsg) tea.Cmd {
	k := m.c.keys
	if m.open == nil {
		switch {
		case key.Matches(msg, k.Up):
			m.cursor = max(0, m.cursor-1)
			m.choose()
		case key.Matches(msg, k.Down):
			m.cursor = max(0, min(len(m.sources)-1, m.cursor+1))
			m.choose()
		case key.Matches(msg, k.Open):
			if m.cursor < len(m.sources) {
				src := m.sources[m.cursor]
				m.open, m.gen, m.offset, m.lines, m.err = &src, m.gen+1, -1, nil, nil
				m.render()
				return m.read()
			}
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Back):
		m.open, m.lines = nil, nil
		m.gen++ // stops the polling of the file just closed
		return nil
	case key.Matches(msg, k.Follow), key.Matches(msg, k.Bottom):
		m.view.GotoBottom()
		return nil
	case key.Matches(msg, k.Top):
		m.view.GotoTop()
		return nil
	}
	var cmd tea.Cmd
	m.view, cmd = m.view.Update(msg)
	return cmd
}

func (m *logsModel) choose() {
	if m.cursor < len(m.sources) {
		m.chosen = m.sources[m.cursor].path
	}
}

func (m *logsModel) read() tea.Cmd {
	path, offset, gen := m.open.path, m.offset, m.gen
	return func() tea.Msg {
		data, next, reset, err := readLog(path, offset)
		return logDataMsg{gen: gen, data: data, offset: next, reset: reset, err: err}
	}
}

func (m *logsModel) apply(msg logDataMsg) {
	m.err = msg.err
	if msg.err != nil {
		return
	}
	m.offset = msg.offset
	if !msg.reset && len(msg.data) == 0 {
		return
	}
	// Follow only when the user is at the end already: someone scrolled up
	// to read an error must not be yanked away by new lines.
	follow := msg.reset || m.view.AtBottom()
	if msg.reset {
		m.lines = nil
	}
	text := strings.TrimSuffix(string(msg.data), "\n")
	if text != "" || len(msg.data) > 0 {
		m.lines = append(m.lines, strings.Split(text, "\n")...)
	}
	if len(m.lines) > keepLines {
		m.lines = append([]string(nil), m.lines[len(m.lines)-keepLines:]...)
	}
	m.render()
	if follow {
		m.view.GotoBottom()
	}
}

// render cuts lines to the width itself because the viewport would wrap
// them, which breaks its own line count and scrolling.
func (m *logsModel) render() {
	out := make([]string, len(m.lines))
	for i, l := range m.lines {
		l = strings.ReplaceAll(l, "\t", "    ")
		if m.width > 0 {
			l = ansi.Truncate(l, m.width, "…")
		}
		out[i] = l
	}
	m.view.SetContent(strings.Join(out, "\n"))
}

func (m *logsModel) View() string {
	st := m.c.styles
	if m.open == nil {
		if len(m.sources) == 0 {
			return "No logs yet: embedded clusters' control-plane logs show up here once the workbench is up.\n"
		}
		var b strings.Builder
		b.WriteString(st.Title.Render("Pick a log to follow") + "\n\n")
		rows := make([][]string, 0, len(m.sources))
		for _, s := range m.sources {
			rows = append(rows, []string{s.label, st.Muted.Render(s.path)})
		}
		for i, l := range columns(rows, 2) {
			if i == m.cursor {
				l = st.Selected.Render("> " + l)
			} else {
				l = "  " + l
			}
			b.WriteString(l + "\n")
		}
		return b.String()
	}
	// The path goes last: it is long, and cut first on narrow terminals.
	head := st.Title.Render(m.open.label) + "  "
	if !m.view.AtBottom() {
		head += st.Warn.Render("paused (F to follow)") + "  "
	}
	head += st.Muted.Render(fmt.Sprintf("%d lines · %s", len(m.lines), m.open.path))
	body := m.view.View()
	if m.err != nil {
		// The error takes the viewport's first line: it is what the user
		// needs to see (no such file yet, permission denied).
		lines := strings.Split(body, "\n")
		body = strings.Join(append([]string{st.Error.Render(m.err.Error())}, lines[:len(lines)-1]...), "\n")
	}
	return head + "\n" + body
}
