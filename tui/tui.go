package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/tui/keys"
	"github.com/tether-dev/tether/tui/styles"
)

// statusEvery is how often the workbench is probed. Probes never overlap:
// the next is scheduled when the last one has answered. The probe covers
// what is in no API server (processes, readiness) and the listings that
// are not watched; the hub's Applications and Agents arrive as they
// change (Source.Live).
const statusEvery = 5 * time.Second

// Options configure the UI.
type Options struct {
	// Workbench is the workbench shown, and the one its actions (up,
	// down, spokes, intercepts, scenarios) act on through the same domain
	// functions the CLI calls. Build it with Reporter as its Progress and
	// a logger from OpenLog, so nothing writes to the screen. What `u`
	// brings up is worked out when it is pressed (cluster.BaseConfig).
	Workbench *cluster.Workbench
	// LogFile receives the UI's own logs, and is offered on the Logs
	// screen. Empty discards them. Run leaves the process-wide loggers
	// (log, slog's default, client-go's klog) alone: a program that
	// draws the UI should send them to the same file while it runs, as
	// the tether command does, since a line on stderr tears the screen.
	LogFile string
	// Logger, if set, is used instead of opening LogFile, so the UI and
	// the workbench can share one open file.
	Logger *slog.Logger
	// Reporter is the Progress of Workbench; the UI shows its steps.
	Reporter *Reporter
	// Source replaces the Workbench as the UI's data (tests).
	Source Source
	// Now is the clock for elapsed times (tests fix it); nil is time.Now.
	Now func() time.Time
	// CacheDir is where diffs keep their Git copies and scenarios their
	// builds; empty is the default cache folder.
	CacheDir string
	// Verbosity is passed to the processes the UI starts (traffic-agents)
	// as -v flags, as the CLI passes its own.
	Verbosity int
}

// Run shows the UI until the user quits or ctx ends. An Up or Down still
// running then is cancelled, and Run waits for its cleanup.
func Run(ctx context.Context, opts Options) error {
	if opts.Workbench == nil && opts.Source == nil {
		return errors.New("tui: Options needs a Workbench or a Source")
	}
	logger := opts.Logger
	if logger == nil && opts.LogFile != "" {
		l, closeLog, err := OpenLog(opts.LogFile, slog.LevelInfo)
		if err != nil {
			return err
		}
		defer closeLog()
		logger = l
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	// Ask the terminal for its background before the program owns stdin:
	// lipgloss would otherwise ask on the first adaptive colour, racing
	// bubbletea for the answer.
	_ = lipgloss.HasDarkBackground()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := newModel(ctx, opts, logger)
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx))
	_, err := p.Run()
	cancel()
	if opts.Reporter != nil {
		opts.Reporter.Close()
	}
	m.c.ops.Wait()
	// Intercepts started from the UI end with it, as `intercept start`
	// ends with its Ctrl-C.
	if c, ok := m.c.src.(interface{ Close() error }); ok {
		if cerr := c.Close(); cerr != nil {
			logger.Error("stop the UI's intercepts", "err", cerr)
			err = errors.Join(err, cerr)
		}
	}
	logger.Info("terminal UI closed", "err", err)
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // interrupted from outside (SIGTERM): a normal end
	}
	return err
}

// New returns the UI's root model without running it, for tests and for
// embedding in another program.
func New(opts Options) tea.Model {
	return newModel(context.Background(), opts, slog.New(slog.DiscardHandler))
}

// model is the root: the tab bar, the help line, and one screen per tab.
type model struct {
	c       *common
	rep     *Reporter
	help    help.Model
	screens []screen
	active  int
	width   int
	height  int
	// statusLoading keeps probes from overlapping; statusAgain asks for
	// one more as soon as the running one answers (after Up or Down).
	statusLoading bool
	statusAgain   bool
}

// screen is one tab. Screens get every message except keys, which go to
// the active screen only, so background results land wherever the user is.
type screen interface {
	help.KeyMap
	Title() string
	SetSize(width, height int)
	Update(tea.Msg) tea.Cmd
	View() string
}

func newModel(ctx context.Context, opts Options, logger *slog.Logger) *model {
	src := opts.Source
	if src == nil {
		// A nil *Reporter must not become a non-nil interface: fleet would
		// call it instead of using its own discarding default.
		var rep progress.Reporter
		if opts.Reporter != nil {
			rep = opts.Reporter
		}
		src = WorkbenchSource(opts, rep, logger)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	st := styles.New()
	c := &common{
		ctx: ctx, src: src, styles: st, keys: keys.New(), now: now, log: logger,
		ops: &sync.WaitGroup{}, logFile: opts.LogFile,
	}
	h := help.New()
	h.Styles.ShortKey, h.Styles.FullKey = st.HelpKey, st.HelpKey
	h.Styles.ShortDesc, h.Styles.FullDesc = st.HelpDesc, st.HelpDesc
	h.Styles.ShortSeparator, h.Styles.FullSeparator = st.HelpSep, st.HelpSep
	return &model{
		c:       c,
		rep:     opts.Reporter,
		help:    h,
		screens: []screen{newClusters(c), newAgents(c), newApps(c), newLogs(c), newIntercepts(c), newScenarios(c)},
	}
}

func (m *model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.fetchStatus(), m.waitLive()}
	if m.rep != nil {
		cmds = append(cmds, m.rep.next())
	}
	return tea.Batch(cmds...)
}

func (m *model) fetchStatus() tea.Cmd {
	if m.statusLoading {
		m.statusAgain = true
		return nil
	}
	m.statusLoading = true
	ctx, src := m.c.ctx, m.c.src
	return func() tea.Msg {
		snap, err := src.Status(ctx)
		return statusMsg{snap: snap, err: err}
	}
}

// waitLive waits for the next Live in the background, the way the
// Reporter's steps arrive: the command blocks on the channel, not the UI,
// and Update issues it again after each message.
func (m *model) waitLive() tea.Cmd {
	ch := m.c.src.Live()
	if ch == nil {
		return nil
	}
	ctx := m.c.ctx
	return func() tea.Msg {
		select {
		case l := <-ch:
			return liveMsg{live: l}
		case <-ctx.Done():
			return nil
		}
	}
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.resize()
		return m, nil
	case tea.KeyMsg:
		if m.capturing() && msg.Type != tea.KeyCtrlC {
			return m, m.screens[m.active].Update(msg)
		}
		if cmd, handled := m.globalKey(msg); handled {
			return m, cmd
		}
		return m, m.screens[m.active].Update(msg)
	case statusMsg:
		m.statusLoading = false
		if msg.err != nil {
			m.c.log.Warn("workbench status", "err", msg.err)
		}
		if m.statusAgain {
			m.statusAgain = false
			cmds = append(cmds, m.fetchStatus())
		} else {
			cmds = append(cmds, tea.Tick(statusEvery, func(time.Time) tea.Msg { return statusTickMsg{} }))
		}
	case statusTickMsg:
		return m, m.fetchStatus()
	case liveMsg:
		cmds = append(cmds, m.waitLive())
	case stepStartMsg, stepUpdateMsg, stepDoneMsg:
		cmds = append(cmds, m.rep.next())
	case opDoneMsg:
		if msg.err != nil {
			m.c.log.Error("workbench operation failed", "op", msg.op, "err", msg.err)
		} else {
			m.c.log.Info("workbench operation done", "op", msg.op)
		}
		cmds = append(cmds, m.fetchStatus())
	}
	for _, s := range m.screens {
		cmds = append(cmds, s.Update(msg))
	}
	return m, tea.Batch(cmds...)
}

// capturer is a screen that can be reading text (a form, a prompt).
type capturer interface{ Capturing() bool }

// capturing says whether the active screen reads text: then every key but
// ctrl+c is its own, so typing q or 2 into a field types them.
func (m *model) capturing() bool {
	c, ok := m.screens[m.active].(capturer)
	return ok && c.Capturing()
}

// globalKey handles the keys that work on every screen.
func (m *model) globalKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := m.c.keys
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit, true
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.resize() // the help grows or shrinks, and so does the screen
		return nil, true
	case key.Matches(msg, k.NextTab):
		m.active = (m.active + 1) % len(m.screens)
		return nil, true
	case key.Matches(msg, k.PrevTab):
		m.active = (m.active + len(m.screens) - 1) % len(m.screens)
		return nil, true
	case key.Matches(msg, k.Screen):
		var n int
		if _, err := fmt.Sscanf(msg.String(), "%d", &n); err == nil && n >= 1 && n <= len(m.screens) {
			m.active = n - 1
		}
		return nil, true
	}
	return nil, false
}

// chrome renders the tab bar and the help, and says how many lines the
// active screen gets between them (-1: as many as it likes, before the
// first size arrives).
func (m *model) chrome() (tabs, helpView string, bodyHeight int) {
	tabs, helpView = m.tabsView(), m.helpView()
	if m.height <= 0 {
		return tabs, fit(helpView, m.width, -1), -1
	}
	// The help never pushes the tabs off the top of a short terminal: it
	// keeps what room there is and is cut there.
	room := max(1, m.height-lipgloss.Height(tabs)-2)
	helpView = fit(helpView, m.width, min(room, lipgloss.Height(helpView)))
	return tabs, helpView, max(0, m.height-lipgloss.Height(tabs)-lipgloss.Height(helpView)-1)
}

func (m *model) resize() {
	_, _, h := m.chrome()
	for _, s := range m.screens {
		s.SetSize(m.width, max(0, h))
	}
}

// tabLayout is one way to draw the tab bar.
type tabLayout struct {
	brand bool
	// short uses the screens' short titles ("Apps").
	short bool
	// activeOnly titles the active tab only; the others show their number.
	activeOnly bool
}

// tabsView draws the first layout that fits on one line, from roomiest
// to tightest: a tab bar that wraps reads as two rows of screens and
// pushes the screen down. 80 columns, the default terminal, takes the
// second.
func (m *model) tabsView() string {
	st := m.c.styles
	var bar string
	for _, l := range []tabLayout{
		{brand: true},
		{brand: true, short: true},
		{short: true},
		{short: true, activeOnly: true},
	} {
		bar = m.tabBar(l)
		if m.width <= 0 || lipgloss.Width(bar) <= m.width {
			break
		}
	}
	if m.width > 0 {
		// Below the tightest layout the bar is cut, never wrapped.
		return st.TabBar.Width(m.width).Render(fit(bar, m.width, -1))
	}
	return st.TabBar.Render(bar)
}

// shortTitler is a screen with a shorter title for narrow terminals.
type shortTitler interface{ ShortTitle() string }

func (m *model) tabBar(l tabLayout) string {
	st := m.c.styles
	var parts []string
	if l.brand {
		parts = append(parts, st.Brand.Render("tether"))
	}
	for i, s := range m.screens {
		title := s.Title()
		if t, ok := s.(shortTitler); ok && l.short {
			title = t.ShortTitle()
		}
		label := fmt.Sprintf("%d %s", i+1, title)
		if l.activeOnly && i != m.active {
			label = strconv.Itoa(i + 1)
		}
		// Brackets mark the active tab where colour and underline do not
		// show (NO_COLOR, dumb terminals).
		if i == m.active {
			parts = append(parts, st.ActiveTab.Render("["+label+"]"))
		} else {
			parts = append(parts, st.Tab.Render(" "+label+" "))
		}
	}
	return lipgloss.JoinHorizontal(lipgloss.Top, parts...)
}

// helpKeys puts the active screen's keys before the global ones: they are
// what the user is most likely looking for.
func (m *model) helpKeys() helpKeys {
	k := m.c.keys
	s := m.screens[m.active]
	if m.capturing() {
		// The global keys type into the field now; only the screen's
		// own keys (submit, cancel, fields) apply.
		return helpKeys{short: s.ShortHelp(), full: s.FullHelp()}
	}
	return helpKeys{
		short:  s.ShortHelp(),
		global: []key.Binding{k.NextTab, k.Help, k.Quit},
		full:   append(append([][]key.Binding(nil), s.FullHelp()...), []key.Binding{k.NextTab, k.PrevTab, k.Screen}, []key.Binding{k.Help, k.Quit}),
	}
}

// helpKeys are the bindings of the help line. Short help is the screen's
// short keys followed by the global ones.
type helpKeys struct {
	short, global []key.Binding
	full          [][]key.Binding
}

// helpView is the help at the bottom: one line, or every key in columns
// after ?. Both fit the terminal's width rather than letting bubbles/help
// cut them with an ellipsis, which would hide the very keys (? and q) that
// lead to the rest.
func (m *model) helpView() string {
	k := m.helpKeys()
	if m.help.ShowAll {
		return m.fullHelpView(k.full)
	}
	return m.shortHelpView(k)
}

// shortHelpView drops keys until the line fits: first tab (the tab bar
// shows the screens), then the moving keys (arrows are what everyone tries
// anyway), then the screen's keys from the last. "? more keys" and "q
// quit" stay, since ? shows whatever was dropped.
func (m *model) shortHelpView(k helpKeys) string {
	h := m.help
	h.Width = 0 // measured here; bubbles/help would cut with "…"
	screen := slices.Clone(k.short)
	global := slices.Clone(k.global)
	line := func() string { return h.ShortHelpView(append(slices.Clone(screen), global...)) }
	if m.width <= 0 {
		return line()
	}
	keys := m.c.keys
	moving := func(b key.Binding) bool {
		for _, mv := range []key.Binding{keys.Up, keys.Down, keys.PageUp, keys.PageDown, keys.Top, keys.Bottom} {
			if slices.Equal(b.Keys(), mv.Keys()) {
				return true
			}
		}
		return false
	}
	for lipgloss.Width(line()) > m.width {
		switch {
		case len(global) > 0 && slices.Equal(global[0].Keys(), keys.NextTab.Keys()):
			global = global[1:]
		case slices.ContainsFunc(screen, moving):
			screen = slices.DeleteFunc(screen, moving)
		case len(screen) > 0:
			screen = screen[:len(screen)-1]
		default:
			h.Width = m.width // nothing left to drop: let bubbles cut it
			return h.ShortHelpView(global)
		}
	}
	return line()
}

// fullHelpView lays the groups out as columns, as bubbles/help does, but
// starts a new row of columns where the next one would pass the right
// edge instead of dropping it.
func (m *model) fullHelpView(groups [][]key.Binding) string {
	h := m.help
	h.Width = 0
	var rows [][][]key.Binding
	var row [][]key.Binding
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		next := append(slices.Clone(row), g)
		if len(row) > 0 && m.width > 0 && lipgloss.Width(h.FullHelpView(next)) > m.width {
			rows = append(rows, row)
			next = [][]key.Binding{g}
		}
		row = next
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, h.FullHelpView(r))
	}
	// A blank line between rows keeps one row's columns from reading as
	// the continuation of the other's.
	return strings.Join(out, "\n\n")
}

func (m *model) View() string {
	tabs, helpView, bodyHeight := m.chrome()
	body := fit(m.screens[m.active].View(), m.width, bodyHeight)
	return strings.Join([]string{tabs, body, "", helpView}, "\n")
}
