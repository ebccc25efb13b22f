package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
)

// scenariosModel is the Scenarios screen: the named scenarios with a line
// each, and one run followed step by step.
type scenariosModel struct {
	c             *common
	width, height int

	list    []ScenarioInfo
	err     error
	loaded  bool
	loading bool
	cursor  int

	// run is the current or last run; it stays on screen until the next
	// one starts so its verdict can be read.
	run     *scenarioRun
	gen     int
	spinner busySpinner
}

// scenarioRun is one run of a scenario as the screen follows it.
type scenarioRun struct {
	gen        int
	name       string
	start, end time.Time
	steps      []scenarioStep
	// finished: RunScenario returned (err is its verdict); drained: every
	// event it sent has been shown. The run is over when both are true,
	// so the verdict never appears above steps still arriving.
	finished, drained bool
	err               error
}

func (r *scenarioRun) over() bool { return r.finished && r.drained }

type scenarioStep struct {
	title      string
	detail     string
	start, end time.Time
	// pending: announced, not started yet.
	pending bool
	running bool
	err     error
}

// Messages of a run; gen ties them to it, so a late message from an
// earlier run is dropped.
type scenarioListMsg struct {
	list []ScenarioInfo
	err  error
}

type scenarioEventMsg struct {
	gen int
	ev  ScenarioEvent
	ch  <-chan ScenarioEvent
}

type scenarioDrainedMsg struct{ gen int }

type scenarioDoneMsg struct {
	gen int
	err error
	at  time.Time
}

func newScenarios(c *common) *scenariosModel {
	return &scenariosModel{c: c, spinner: newBusySpinner(c.styles)}
}

func (m *scenariosModel) Title() string { return "Scenarios" }

func (m *scenariosModel) SetSize(w, h int) { m.width, m.height = w, h }

func (m *scenariosModel) ShortHelp() []key.Binding {
	k := m.c.keys
	return []key.Binding{k.Up, k.Down, k.RunScenario}
}

func (m *scenariosModel) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

func (m *scenariosModel) running() bool { return m.run != nil && !m.run.over() }

func (m *scenariosModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		// The catalog is fixed for the life of the program: one listing.
		if !m.loaded && !m.loading {
			m.loading = true
			ctx, src := m.c.ctx, m.c.src
			return func() tea.Msg {
				list, err := src.Scenarios(ctx)
				return scenarioListMsg{list: list, err: err}
			}
		}
	case scenarioListMsg:
		m.list, m.err, m.loaded, m.loading = msg.list, msg.err, true, false
		m.cursor = max(0, min(m.cursor, len(m.list)-1))
	case scenarioEventMsg:
		if m.run == nil || msg.gen != m.run.gen {
			return nil
		}
		m.apply(msg.ev)
		return tea.Batch(m.spinner.start(), nextScenarioEvent(msg.gen, msg.ch))
	case scenarioDrainedMsg:
		if m.run != nil && msg.gen == m.run.gen {
			m.run.drained = true
		}
	case scenarioDoneMsg:
		if m.run != nil && msg.gen == m.run.gen {
			m.run.finished, m.run.err, m.run.end = true, msg.err, msg.at
		}
	case spinner.TickMsg:
		return m.spinner.tick(msg, m.running())
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

// apply records one event. A step is found by its title among the steps
// pending or running (the last running one for a detail without a title),
// so a scenario may repeat a title in a later step.
func (m *scenariosModel) apply(ev ScenarioEvent) {
	at := ev.At
	if at.IsZero() {
		at = m.c.now()
	}
	r := m.run
	if ev.Phase == StepPending {
		r.steps = append(r.steps, scenarioStep{title: ev.Step, pending: true})
		return
	}
	var s *scenarioStep
	for i := range r.steps {
		st := &r.steps[i]
		switch {
		case ev.Phase == StepStarted && st.pending && st.title == ev.Step:
			s = st
		case ev.Phase != StepStarted && st.running && (st.title == ev.Step || (ev.Step == "" && ev.Phase == StepDetail)):
			s = st // the last match wins: the step running now
		}
		if s != nil && ev.Phase == StepStarted {
			break
		}
	}
	if s == nil {
		if ev.Phase == StepDetail && ev.Step == "" {
			return // a detail before any step: nothing to attach it to
		}
		r.steps = append(r.steps, scenarioStep{title: ev.Step})
		s = &r.steps[len(r.steps)-1]
		s.start, s.running = at, true
	}
	switch ev.Phase {
	case StepStarted:
		s.pending, s.running, s.start, s.detail = false, true, at, ev.Detail
	case StepDetail:
		s.detail = ev.Detail
	case StepPassed:
		s.running, s.end, s.detail = false, at, ev.Detail
	case StepFailed:
		s.running, s.end, s.err, s.detail = false, at, ev.Err, ev.Detail
		if s.err == nil {
			s.err = fmt.Errorf("failed")
		}
	}
}

func (m *scenariosModel) key(msg tea.KeyMsg) tea.Cmd {
	k := m.c.keys
	switch {
	case key.Matches(msg, k.Up):
		m.cursor = max(0, m.cursor-1)
	case key.Matches(msg, k.Down):
		m.cursor = max(0, min(len(m.list)-1, m.cursor+1))
	case key.Matches(msg, k.RunScenario):
		return m.start()
	}
	return nil
}

// start runs the selected scenario: one command runs it, another reads
// its events one at a time (the way a channel feeds a bubbletea program).
func (m *scenariosModel) start() tea.Cmd {
	if m.running() || m.cursor >= len(m.list) {
		return nil
	}
	name := m.list[m.cursor].Name
	m.gen++
	gen := m.gen
	m.run = &scenarioRun{gen: gen, name: name, start: m.c.now()}
	// The buffer lets a scenario report a burst of steps without waiting
	// for the screen to draw each one.
	ch := make(chan ScenarioEvent, 64)
	ctx, src, ops, now := m.c.ctx, m.c.src, m.c.ops, m.c.now
	ops.Add(1) // a quit cancels the run; Run waits for its cleanup
	m.c.log.Info("scenario started", "scenario", name)
	run := func() tea.Msg {
		defer ops.Done()
		err := src.RunScenario(ctx, name, ch)
		// The Source has sent everything by now (it must not send after
		// returning), so closing tells the reader it has seen it all.
		close(ch)
		return scenarioDoneMsg{gen: gen, err: err, at: now()}
	}
	return tea.Batch(m.spinner.start(), run, nextScenarioEvent(gen, ch))
}

func nextScenarioEvent(gen int, ch <-chan ScenarioEvent) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return scenarioDrainedMsg{gen: gen}
		}
		return scenarioEventMsg{gen: gen, ev: ev, ch: ch}
	}
}

func (m *scenariosModel) View() string {
	st := m.c.styles
	var b strings.Builder
	switch {
	case !m.loaded:
		b.WriteString(st.Muted.Render("Listing scenarios…") + "\n")
	case m.err != nil:
		b.WriteString(wrap(st.Error.Render("✗ "+m.err.Error()), m.width, "  ") + "\n")
	case len(m.list) == 0:
		b.WriteString("No scenarios are wired into this build yet.\n")
	default:
		rows := [][]string{{st.Header.Render("SCENARIO"), st.Header.Render("WHAT IT SHOWS")}}
		for _, s := range m.list {
			rows = append(rows, []string{s.Name, s.Description})
		}
		laid := columns(rows, 2)
		b.WriteString("  " + laid[0] + "\n")
		for i, l := range laid[1:] {
			if i == m.cursor {
				b.WriteString(st.Selected.Render("> "+l) + "\n")
			} else {
				b.WriteString("  " + l + "\n")
			}
		}
	}
	if m.run != nil {
		used := strings.Count(b.String(), "\n") + 1
		b.WriteString("\n" + m.runView(m.height-used-1))
	}
	return b.String()
}

// runView shows the run's verdict line and as many of its latest steps as
// fit in room lines.
func (m *scenariosModel) runView(room int) string {
	st := m.c.styles
	r := m.run
	var head string
	title := st.Title.Render("Scenario " + r.name)
	switch {
	case !r.over():
		head = fmt.Sprintf("%s %s %s", title, m.spinner.View(), st.Muted.Render("running · "+took(m.c.now().Sub(r.start))))
	case r.err != nil:
		head = fmt.Sprintf("%s %s", title, st.Error.Render("✗ FAILED after "+took(r.end.Sub(r.start))+": "+r.err.Error()))
	default:
		head = fmt.Sprintf("%s %s", title, st.OK.Render("✓ PASSED in "+took(r.end.Sub(r.start))))
	}
	lines := make([]string, 0, len(r.steps))
	for _, s := range r.steps {
		detail := ""
		if s.detail != "" {
			detail = st.Muted.Render(" · " + s.detail)
		}
		var line string
		switch {
		case s.pending && r.over():
			line = fmt.Sprintf("  %s %s %s", st.Muted.Render("-"), st.Muted.Render(s.title), st.Muted.Render("not run"))
		case s.pending:
			line = fmt.Sprintf("  %s %s", st.Muted.Render("·"), st.Muted.Render(s.title))
		case s.running && r.over():
			// The scenario ended without closing this step.
			line = fmt.Sprintf("  %s %s %s", st.Muted.Render("-"), s.title, st.Muted.Render("not finished"))
		case s.running:
			line = fmt.Sprintf("  %s %s %s%s", m.spinner.View(), s.title, st.Muted.Render(took(m.c.now().Sub(s.start))), detail)
		case s.err != nil:
			line = fmt.Sprintf("  %s %s %s %s%s", st.Error.Render("✗"), s.title, st.Muted.Render(took(s.end.Sub(s.start))), st.Error.Render(s.err.Error()), detail)
		default:
			line = fmt.Sprintf("  %s %s %s%s", st.OK.Render("✓"), s.title, st.Muted.Render(took(s.end.Sub(s.start))), detail)
		}
		lines = append(lines, wrap(line, m.width, "    "))
	}
	return latest(wrap(head, m.width, "  "), lines, room, st.Muted)
}
