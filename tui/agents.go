package tui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// agentsModel is the Agents screen: per spoke, whether its agent is
// connected to the principal, when it was last seen, its version, how
// many Applications the hub holds for it, how many messages wait in its
// outbox, the latest propagation delays each way and how often its
// process restarted. It reads the hub's Agent objects,
// which the principal keeps up to date: from the Source's watch when it has
// one (a liveMsg per change), else by listing after each probe.
type agentsModel struct {
	c             *common
	width, height int

	// spokes are the workbench's spokes, so a spoke whose agent never
	// connected (no Agent object) still gets a row.
	spokes   []string
	clusters int
	agents   []v1alpha1.Agent
	err      error
	loaded   bool
	// loading keeps at most one listing in flight; again asks for one
	// more when a probe arrived while it ran.
	loading bool
	again   bool
	// live is the newest Live; while its Agents are synced, they are
	// what the screen shows and nothing is listed.
	live Live
}

func newAgents(c *common) *agentsModel { return &agentsModel{c: c} }

func (m *agentsModel) Title() string { return "Agents" }

func (m *agentsModel) SetSize(w, h int) { m.width, m.height = w, h }

// The screen is read-only: only the global keys apply.
func (m *agentsModel) ShortHelp() []key.Binding  { return nil }
func (m *agentsModel) FullHelp() [][]key.Binding { return nil }

func (m *agentsModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		if msg.err != nil {
			return nil
		}
		m.clusters = len(msg.snap.Clusters)
		m.spokes = m.spokes[:0]
		for _, c := range msg.snap.Clusters {
			if c.Role != cluster.RoleHub {
				m.spokes = append(m.spokes, c.Name)
			}
		}
		if m.watched() {
			return nil
		}
		return m.fetch()
	case liveMsg:
		was := m.watched()
		m.live = msg.live
		if m.watched() {
			m.agents, m.err, m.loaded = m.live.Agents, nil, true
			return nil
		}
		if was {
			return m.fetch() // the watch stopped: list again
		}
	case agentsMsg:
		m.loading = false
		if m.watched() {
			m.again = false // the watch is newer than any listing
			return nil
		}
		m.agents, m.err, m.loaded = msg.agents, msg.err, true
		if m.again {
			m.again = false
			return m.fetch()
		}
	}
	return nil
}

// watched says the screen shows the watch's Agents.
func (m *agentsModel) watched() bool { return m.live.AgentsSynced }

// fetch lists the Agents in the background when they are not watched;
// every status probe asks again, so the screen follows connections coming
// and going.
func (m *agentsModel) fetch() tea.Cmd {
	if m.clusters == 0 {
		m.agents, m.err, m.loaded = nil, nil, true
		return nil
	}
	if m.loading {
		m.again = true
		return nil
	}
	m.loading = true
	ctx, src := m.c.ctx, m.c.src
	return func() tea.Msg {
		agents, err := src.Agents(ctx)
		return agentsMsg{agents: agents, err: err}
	}
}

func (m *agentsModel) View() string {
	st := m.c.styles
	switch {
	case m.clusters == 0 && m.loaded:
		return "No clusters: bring the workbench up on the Clusters screen.\n"
	case !m.loaded:
		return st.Muted.Render("Listing Agents…") + "\n"
	case m.err != nil:
		return wrap(st.Error.Render("✗ "+m.c.errText(m.err)), m.width, "  ") + "\n"
	}
	rows := [][]string{{
		st.Header.Render("SPOKE"), st.Header.Render("AGENT"), st.Header.Render("LAST SEEN"),
		st.Header.Render("VERSION"), st.Header.Render("APPS"), st.Header.Render("OUTBOX"),
		st.Header.Render("HUB→SPOKE"), st.Header.Render("SPOKE→HUB"), st.Header.Render("RESTARTS"),
	}}
	seen := map[string]bool{}
	for _, a := range m.agents {
		seen[a.Name] = true
		conn := st.Error.Render("✗ disconnected")
		if a.Status.Connected {
			conn = st.OK.Render("✓ connected")
		}
		last := "-"
		if a.Status.LastSeen != nil {
			last = took(m.c.now().Sub(a.Status.LastSeen.Time)) + " ago"
		}
		rows = append(rows, []string{a.Name, conn, last, cmp.Or(a.Status.Version, "-"), strconv.Itoa(a.Status.Applications),
			strconv.Itoa(a.Status.Pending), millis(a.Status.LastHubToSpokeMillis), millis(a.Status.LastSpokeToHubMillis),
			strconv.Itoa(a.Status.Restarts)})
	}
	// A spoke without an Agent object has never reached the principal;
	// saying so is more useful than leaving it out.
	for _, s := range m.spokes {
		if !seen[s] {
			rows = append(rows, []string{s, st.Error.Render("✗ never connected"), "-", "-", "-", "-", "-", "-", "-"})
		}
	}
	slices.SortStableFunc(rows[1:], func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	if len(rows) == 1 {
		return st.Muted.Render("No spokes, so no agents.") + "\n"
	}
	// Narrow terminals lose the version first, then the Application
	// count, then when it was last seen (AGENT says whether it is there
	// now): what says whether delivery keeps up stays.
	laid, _ := fitColumns(rows, 2, m.width-2, 3, 4, 2)
	var b strings.Builder
	for _, l := range laid {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// millis shows a delay the principal measured: "-" before one was,
// milliseconds under a second, else seconds.
func millis(ms *int64) string {
	switch {
	case ms == nil:
		return "-"
	case *ms < 1000:
		return strconv.FormatInt(*ms, 10) + "ms"
	default:
		return (time.Duration(*ms) * time.Millisecond).Round(100 * time.Millisecond).String()
	}
}
