package tui

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/tether-dev/tether/gitops/repo"
)

// diffModel is the Applications screen's diff view: what a sync of one
// Application would apply, in a scrollable viewport. The diff is computed
// once when the view opens (it fetches Git and reads the cluster); `d`
// again recomputes it.
type diffModel struct {
	c             *common
	width, height int

	// id ties the view to the request it made, so a slow answer for a
	// view the user has left is dropped.
	id                      int
	cluster, namespace, app string
	loading                 bool
	res                     Diff
	err                     error
	vp                      viewport.Model
}

// diffMsg is the answer to one diff request.
type diffMsg struct {
	id   int
	diff Diff
	err  error
}

func newDiff(c *common, id int, cluster, namespace, app string) *diffModel {
	vp := viewport.New(0, 0)
	k := c.keys
	vp.KeyMap = viewport.KeyMap{Up: k.Up, Down: k.Down, PageUp: k.PageUp, PageDown: k.PageDown}
	return &diffModel{c: c, id: id, cluster: cluster, namespace: namespace, app: app, vp: vp}
}

// fetch asks the Source in the background: a diff clones or fetches Git,
// which must never hold up the screen.
func (m *diffModel) fetch() tea.Cmd {
	m.loading, m.err = true, nil
	ctx, src, id := m.c.ctx, m.c.src, m.id
	cl, ns, app := m.cluster, m.namespace, m.app
	return func() tea.Msg {
		d, err := src.Diff(ctx, cl, ns, app)
		return diffMsg{id: id, diff: d, err: err}
	}
}

func (m *diffModel) setSize(w, h int) {
	m.width, m.height = w, h
	// Three lines of heading above; a status line of the screen below
	// may cover the last line, which the percentage accounts for.
	m.vp.Width, m.vp.Height = w, max(1, h-3)
	m.render()
}

func (m *diffModel) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case diffMsg:
		if msg.id != m.id {
			return nil
		}
		m.loading, m.res, m.err = false, msg.diff, msg.err
		m.render()
		m.vp.GotoTop()
	case tea.KeyMsg:
		var cmd tea.Cmd
		m.vp, cmd = m.vp.Update(msg)
		return cmd
	}
	return nil
}

// render lays the diff out for the viewport: one heading per resource,
// then its unified diff with additions and removals coloured (and their
// +/- kept, for terminals without colour).
func (m *diffModel) render() {
	st := m.c.styles
	var b strings.Builder
	for i, d := range m.res.Resources {
		if i > 0 {
			b.WriteString("\n")
		}
		action := strings.ToUpper(d.Action[:1]) + d.Action[1:]
		style := st.Warn
		switch d.Action {
		case "create":
			style = st.OK
		case "prune":
			style = st.Error
		case "keep":
			style = st.Muted
		}
		b.WriteString(style.Render(action) + " " + st.Title.Render(d.Resource) + "\n")
		if d.Action == "keep" {
			b.WriteString(st.Muted.Render("  gone from Git; kept because the sync policy does not prune") + "\n")
		}
		for _, l := range strings.Split(strings.TrimRight(d.Unified, "\n"), "\n") {
			switch {
			case l == "":
				continue
			case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
				b.WriteString(st.Header.Render(l) + "\n")
			case strings.HasPrefix(l, "+"):
				b.WriteString(st.OK.Render(l) + "\n")
			case strings.HasPrefix(l, "-"):
				b.WriteString(st.Error.Render(l) + "\n")
			case strings.HasPrefix(l, "@@"):
				b.WriteString(st.Muted.Render(l) + "\n")
			default:
				b.WriteString(l + "\n")
			}
		}
	}
	m.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}

func (m *diffModel) view() string {
	st := m.c.styles
	var b strings.Builder
	where := "on " + m.cluster
	if m.namespace != "" {
		where += " · " + m.namespace
	}
	fmt.Fprintf(&b, "%s %s %s\n", st.Title.Render("Diff of "+m.app), st.Muted.Render(where), st.Muted.Render("(what a sync would apply)"))
	switch {
	case m.loading:
		b.WriteString(st.Muted.Render("Fetching Git and reading the cluster…") + "\n")
		return b.String()
	case m.err != nil:
		b.WriteString(wrap(st.Error.Render("✗ diff failed: "+m.c.errText(m.err)), m.width, "  ") + "\n")
		return b.String()
	case len(m.res.Resources) == 0:
		b.WriteString(st.OK.Render(fmt.Sprintf("✓ in sync with %s: a sync would change nothing", cmp.Or(repo.ShortSHA(m.res.Revision), "-"))) + "\n")
		return b.String()
	}
	n := len(m.res.Resources)
	noun := "resources"
	if n == 1 {
		noun = "resource"
	}
	summary := fmt.Sprintf("A sync to %s would change %d %s", repo.ShortSHA(m.res.Revision), n, noun)
	if m.vp.TotalLineCount() > m.vp.Height {
		summary += fmt.Sprintf(" · %d%%", int(m.vp.ScrollPercent()*100))
	}
	b.WriteString(summary + "\n\n")
	b.WriteString(m.vp.View() + "\n")
	return b.String()
}
