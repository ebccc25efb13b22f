package tui

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/tether-dev/tether/cluster"
)

// clustersModel is the Clusters screen: the workbench's clusters, and Up
// and Down with their steps.
type clustersModel struct {
	c             *common
	width, height int

	snap    Snapshot
	loaded  bool
	statErr error

	// op is the running operation ("up" or "down"), empty when idle.
	op      string
	opStart time.Time
	// lastOp and lastErr describe the operation that finished last, kept
	// on screen until the next one starts so its result can be read.
	lastOp   string
	lastErr  error
	lastTook time.Duration
	// confirmDown is set after the first `d`: down deletes every cluster,
	// so it takes a second press.
	confirmDown bool
	// prompt asks for the name of the spoke to add or remove; nil when
	// closed. While it is open the screen takes every key.
	prompt *spokePrompt
	// flash says why a key did nothing (an operation runs, no workbench).
	flash   string
	steps   []step
	spinner busySpinner
}

type step struct {
	id         int
	title      string
	detail     string
	start, end time.Time
	running    bool
	err        error
}

func newClusters(c *common) *clustersModel {
	return &clustersModel{c: c, spinner: newBusySpinner(c.styles)}
}

func (m *clustersModel) Title() string { return "Clusters" }

func (m *clustersModel) SetSize(w, h int) { m.width, m.height = w, h }

// spokePrompt is the one-field form of `a` and `x`.
type spokePrompt struct {
	remove bool
	form   *form
}

func (m *clustersModel) ShortHelp() []key.Binding {
	k := m.c.keys
	if m.prompt != nil {
		return []key.Binding{k.Submit, k.Cancel}
	}
	return []key.Binding{k.WorkbenchUp, k.WorkbenchDown, k.AddSpoke, k.RemoveSpoke}
}

func (m *clustersModel) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// Capturing: the spoke prompt reads text.
func (m *clustersModel) Capturing() bool { return m.prompt != nil }

// busy says whether something on this screen animates.
func (m *clustersModel) busy() bool {
	if m.op != "" {
		return true
	}
	for _, s := range m.steps {
		if s.running {
			return true
		}
	}
	return false
}

func (m *clustersModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		m.loaded = true
		m.statErr = msg.err
		if msg.err == nil {
			m.snap = msg.snap
		}
	case spinner.TickMsg:
		return m.spinner.tick(msg, m.busy())
	case stepStartMsg:
		m.steps = append(m.steps, step{id: msg.id, title: msg.title, start: msg.at, running: true})
		return m.spinner.start()
	case stepUpdateMsg:
		if s := m.step(msg.id); s != nil {
			s.detail = msg.detail
		}
	case stepDoneMsg:
		if s := m.step(msg.id); s != nil {
			s.running, s.end, s.err = false, msg.at, msg.err
		}
	case opDoneMsg:
		m.op = ""
		m.lastOp, m.lastErr, m.lastTook = msg.op, msg.err, msg.at.Sub(m.opStart)
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

func (m *clustersModel) step(id int) *step {
	for i := range m.steps {
		if m.steps[i].id == id {
			return &m.steps[i]
		}
	}
	return nil
}

func (m *clustersModel) key(msg tea.KeyMsg) tea.Cmd {
	if m.prompt != nil {
		return m.promptKey(msg)
	}
	confirm := m.confirmDown
	m.confirmDown = false
	m.flash = ""
	switch {
	case key.Matches(msg, m.c.keys.AddSpoke):
		m.openPrompt(false)
	case key.Matches(msg, m.c.keys.RemoveSpoke):
		m.openPrompt(true)
	case key.Matches(msg, m.c.keys.WorkbenchUp):
		return m.start("up", m.c.src.Up)
	case key.Matches(msg, m.c.keys.WorkbenchDown):
		if m.op != "" {
			return nil
		}
		if !confirm {
			m.confirmDown = true
			return nil
		}
		return m.start("down", m.c.src.Down)
	}
	return nil
}

// config is the workbench as the last probe saw it, for checking a spoke
// name the way `tether spoke` does before anything starts.
func (m *clustersModel) config() cluster.Config {
	var cfg cluster.Config
	for _, c := range m.snap.Clusters {
		if c.Role == cluster.RoleHub {
			cfg.Hub = cluster.ClusterConfig{Name: c.Name}
		} else {
			cfg.Spokes = append(cfg.Spokes, cluster.ClusterConfig{Name: c.Name})
		}
	}
	return cfg
}

// openPrompt asks for a spoke name, offering the next free spoke-N to add
// or the last spoke to remove, so the common case is one key and enter.
func (m *clustersModel) openPrompt(remove bool) {
	switch {
	case m.op != "":
		m.flash = "Wait for " + strings.ToLower(opTitle(m.op)) + " to finish."
		return
	case len(m.snap.Clusters) == 0:
		m.flash = "There is no workbench to change: press u to bring one up first."
		return
	}
	cfg := m.config()
	var value, label, hint string
	if remove {
		if len(cfg.Spokes) == 0 {
			m.flash = "The workbench has no spokes to remove."
			return
		}
		value, label = cfg.Spokes[len(cfg.Spokes)-1].Name, "Spoke to remove"
		hint = "stops its agent, deletes its Applications on the hub and the cluster"
	} else {
		taken := map[string]bool{cfg.Hub.Name: true}
		for _, s := range cfg.Spokes {
			taken[s.Name] = true
		}
		n := len(cfg.Spokes) + 1
		for taken[fmt.Sprintf("spoke-%d", n)] {
			n++
		}
		value, label = fmt.Sprintf("spoke-%d", n), "New spoke"
		hint = "lower-case letters, digits and -"
	}
	k := m.c.keys
	m.prompt = &spokePrompt{remove: remove, form: newForm(m.c.styles, k.NextField, k.PrevField,
		formField{label: label, value: value, hint: hint, limit: 40})}
	m.prompt.form.inputs[0].CursorEnd()
}

func (m *clustersModel) promptKey(msg tea.KeyMsg) tea.Cmd {
	k := m.c.keys
	p := m.prompt
	switch {
	case key.Matches(msg, k.Cancel):
		m.prompt = nil
		return nil
	case key.Matches(msg, k.Submit):
		name := p.form.value(0)
		if name == "" {
			p.form.err = "type a spoke name"
			return nil
		}
		// The same checks as `tether spoke`, on what the screen shows; the
		// workbench checks again under its lock.
		var err error
		if p.remove {
			_, err = m.config().WithoutSpoke(name)
		} else {
			_, err = m.config().WithSpoke(cluster.ClusterConfig{Name: name})
		}
		if err != nil {
			p.form.err = m.c.errText(err)
			return nil
		}
		m.prompt = nil
		src := m.c.src
		if p.remove {
			return m.start("remove spoke "+name, func(ctx context.Context) error { return src.RemoveSpoke(ctx, name) })
		}
		return m.start("add spoke "+name, func(ctx context.Context) error { return src.AddSpoke(ctx, name) })
	}
	return p.form.update(msg)
}

// start runs an operation in the background; one at a time, because the
// workbench lock would make a second one wait anyway.
func (m *clustersModel) start(op string, run func(context.Context) error) tea.Cmd {
	if m.op != "" {
		return nil
	}
	m.op, m.opStart, m.steps, m.lastOp, m.lastErr = op, m.c.now(), nil, "", nil
	ctx, ops, now := m.c.ctx, m.c.ops, m.c.now
	ops.Add(1)
	m.c.log.Info("workbench operation started", "op", op)
	return tea.Batch(m.spinner.start(), func() tea.Msg {
		defer ops.Done()
		err := run(ctx)
		return opDoneMsg{op: op, err: err, at: now()}
	})
}

func (m *clustersModel) View() string {
	st := m.c.styles
	var b strings.Builder
	switch {
	case !m.loaded:
		b.WriteString(st.Muted.Render("Reading the workbench…") + "\n")
	case m.statErr != nil:
		b.WriteString(st.Error.Render("Status failed: "+m.c.errText(m.statErr)) + "\n")
	case len(m.snap.Clusters) == 0:
		fmt.Fprintf(&b, "No workbench in %s. Press %s to bring one up.\n",
			cmp.Or(m.snap.StateDir, "-"), st.Title.Render(m.c.keys.WorkbenchUp.Help().Key))
	default:
		fmt.Fprintf(&b, "%s  %s\n\n", st.Title.Render("Workbench"), st.Muted.Render(m.snap.Provider+" provider · "+m.snap.StateDir))
		b.WriteString(m.table())
	}
	if m.confirmDown {
		b.WriteString("\n" + wrap(st.Warn.Render("Press d again to delete every cluster of the workbench; any other key cancels."), m.width, "") + "\n")
	}
	if m.flash != "" {
		b.WriteString("\n" + wrap(st.Flash.Render(m.flash), m.width, "") + "\n")
	}
	if m.prompt != nil {
		verb := "Add a spoke"
		if m.prompt.remove {
			verb = "Remove a spoke"
		}
		b.WriteString("\n" + st.Title.Render(verb) + "\n" + m.prompt.form.view(m.width))
	}
	used := strings.Count(b.String(), "\n") + 1
	if steps := m.stepsView(m.height - used - 1); steps != "" {
		b.WriteString("\n" + steps)
	}
	return b.String()
}

func (m *clustersModel) table() string {
	st := m.c.styles
	rows := func(reasons bool) [][]string {
		rows := [][]string{{
			st.Header.Render("CLUSTER"), st.Header.Render("ROLE"), st.Header.Render("PROVIDER"),
			st.Header.Render("API SERVER"), st.Header.Render("NODES"), st.Header.Render("READY"),
		}}
		for _, c := range m.snap.Clusters {
			ready := st.OK.Render("✓ ready")
			switch {
			case c.Ready:
			case reasons:
				ready = st.Error.Render("✗ " + cmp.Or(c.Reason, "-"))
			default:
				ready = st.Error.Render("✗ not ready")
			}
			rows = append(rows, []string{c.Name, c.Role, c.Provider, cmp.Or(c.Endpoint, "-"), cmp.Or(c.Nodes, "-"), ready})
		}
		return rows
	}
	// A reason is a sentence with what to do; where it does not fit in
	// its cell it goes under the table whole rather than cut.
	laid, below := columns(rows(true), 2), false
	for _, l := range laid {
		if m.width > 0 && lipgloss.Width(l) > m.width {
			laid, below = columns(rows(false), 2), true
			break
		}
	}
	var b strings.Builder
	for _, l := range laid {
		b.WriteString(l + "\n")
	}
	if below {
		b.WriteString("\n")
		for _, c := range m.snap.Clusters {
			if !c.Ready {
				b.WriteString(wrap(st.Error.Render("✗ "+c.Name+": "+cmp.Or(c.Reason, "-")), m.width, "  ") + "\n")
			}
		}
	}
	for _, c := range m.snap.Clusters {
		if len(c.Processes) == 0 {
			continue
		}
		parts := make([]string, 0, len(c.Processes))
		for _, p := range c.Processes {
			if p.Alive {
				parts = append(parts, fmt.Sprintf("%s %s", p.Name, st.OK.Render("alive")))
			} else {
				parts = append(parts, fmt.Sprintf("%s %s", p.Name, st.Error.Render("DEAD")))
			}
		}
		b.WriteString("\n" + m.wrapList(st.Muted.Render(c.Name+" processes:"), parts))
	}
	if len(m.snap.Clusters) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// wrapList joins items after head, breaking lines between items rather
// than letting the screen cut a DEAD off the end.
func (m *clustersModel) wrapList(head string, items []string) string {
	sep := m.c.styles.Muted.Render(" · ")
	line, out := head, []string(nil)
	for i, it := range items {
		add := " " + it
		if i > 0 {
			add = sep + it
		}
		if m.width > 0 && lipgloss.Width(line+add) > m.width && line != head {
			out = append(out, line)
			line = "  " + it
			continue
		}
		line += add
	}
	return strings.Join(append(out, line), "\n")
}

// stepsView shows the operation and as many of its latest steps as fit in
// room lines.
func (m *clustersModel) stepsView(room int) string {
	st := m.c.styles
	var head string
	switch {
	case m.op != "":
		head = fmt.Sprintf("%s %s %s", st.Title.Render(opTitle(m.op)), m.spinner.View(), st.Muted.Render(took(m.c.now().Sub(m.opStart))))
	case m.lastOp != "" && m.lastErr != nil:
		head = fmt.Sprintf("%s %s", st.Title.Render(opTitle(m.lastOp)), st.Error.Render("✗ failed after "+took(m.lastTook)+": "+m.c.errText(m.lastErr)))
	case m.lastOp != "":
		head = fmt.Sprintf("%s %s", st.Title.Render(opTitle(m.lastOp)), st.OK.Render("✓ done in "+took(m.lastTook)))
	default:
		return ""
	}
	lines := make([]string, 0, len(m.steps))
	for _, s := range m.steps {
		var line string
		switch {
		case s.running:
			line = fmt.Sprintf("  %s %s %s", m.spinner.View(), s.title, st.Muted.Render(took(m.c.now().Sub(s.start))))
			if s.detail != "" {
				line += st.Muted.Render(" · " + s.detail)
			}
		case s.err != nil:
			line = fmt.Sprintf("  %s %s %s %s", st.Error.Render("✗"), s.title, st.Muted.Render(took(s.end.Sub(s.start))), st.Error.Render(m.c.errText(s.err)))
		default:
			line = fmt.Sprintf("  %s %s %s", st.OK.Render("✓"), s.title, st.Muted.Render(took(s.end.Sub(s.start))))
		}
		lines = append(lines, wrap(line, m.width, "    "))
	}
	return latest(wrap(head, m.width, "  "), lines, room, st.Muted)
}

func opTitle(op string) string {
	switch op {
	case "up":
		return "Bringing the workbench up"
	case "down":
		return "Bringing the workbench down"
	}
	if name, ok := strings.CutPrefix(op, "add spoke "); ok {
		return "Adding spoke " + name
	}
	if name, ok := strings.CutPrefix(op, "remove spoke "); ok {
		return "Removing spoke " + name
	}
	return op
}
