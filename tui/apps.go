package tui

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/repo"
)

// appsModel is the Applications screen: every cluster's Applications, and
// one Application's resources. The hub's come from the Source's watch when
// it has one (a liveMsg per change); the other clusters', and the hub's
// until the watch has synced, are listed after each probe.
type appsModel struct {
	c             *common
	width, height int

	clusters []string
	// hubs are the clusters whose role is hub: their Applications live in
	// one namespace per spoke, so the namespace is the spoke.
	hubs map[string]bool
	// listed is the last listing; results is what is shown: listed, with
	// the watched hub's Applications from live in its place.
	listed  []clusterApps
	live    Live
	results []clusterApps
	loaded  bool
	// loading keeps at most one listing in flight, so a slow cluster
	// never piles up requests behind the periodic status refresh.
	loading bool
	// again remembers that a listing was asked for while one ran (after
	// a sync, say), so the newer state is fetched right after.
	again bool

	cursor int
	offset int
	// open is the Application shown in detail, by key; empty for the list.
	open     string
	flash    string
	flashErr bool
	// replicas is what the next "make a change" scales the sample to; it
	// cycles 2, 3, 4, 1 so every press is a real change.
	replicas int
	// changing keeps one commit in flight at a time.
	changing bool
	// diff is the open Application's diff view; nil when not shown.
	diff    *diffModel
	diffSeq int
}

// appRef names one Application across clusters.
type appRef struct {
	cluster string
	app     *v1alpha1.Application
}

func (r appRef) key() string { return r.cluster + "/" + r.app.Namespace + "/" + r.app.Name }

func newApps(c *common) *appsModel { return &appsModel{c: c, replicas: 2, hubs: map[string]bool{}} }

// spoke is the spoke an Application is for: its namespace on the hub, the
// cluster itself on a spoke.
func (m *appsModel) spoke(cluster string, a *v1alpha1.Application) string {
	if m.hubs[cluster] {
		return a.Namespace
	}
	return cluster
}

func (m *appsModel) Title() string { return "Applications" }

// ShortTitle is the tab's title on narrow terminals.
func (m *appsModel) ShortTitle() string { return "Apps" }

func (m *appsModel) SetSize(w, h int) {
	m.width, m.height = w, h
	if m.diff != nil {
		m.diff.setSize(w, h)
	}
}

func (m *appsModel) ShortHelp() []key.Binding {
	k := m.c.keys
	if m.diff != nil {
		return []key.Binding{k.Up, k.Down, k.PageDown, k.Diff, k.Back}
	}
	if m.open != "" {
		return []key.Binding{k.Diff, k.Sync, k.Refresh, k.Back}
	}
	return []key.Binding{k.Up, k.Down, k.Open, k.Sync, k.Refresh, k.MakeChange}
}

func (m *appsModel) FullHelp() [][]key.Binding {
	k := m.c.keys
	return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Open, k.Back, k.Diff}, {k.Sync, k.Refresh, k.MakeChange}}
}

// refs lists the Applications in screen order.
func (m *appsModel) refs() []appRef {
	var out []appRef
	for i := range m.results {
		r := &m.results[i]
		for j := range r.apps {
			out = append(out, appRef{cluster: r.cluster, app: &r.apps[j]})
		}
	}
	return out
}

func (m *appsModel) selected() (appRef, bool) {
	refs := m.refs()
	if m.open != "" {
		for _, r := range refs {
			if r.key() == m.open {
				return r, true
			}
		}
		return appRef{}, false
	}
	if m.cursor < 0 || m.cursor >= len(refs) {
		return appRef{}, false
	}
	return refs[m.cursor], true
}

func (m *appsModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		if msg.err != nil {
			return nil
		}
		m.clusters = m.clusters[:0]
		clear(m.hubs)
		for _, c := range msg.snap.Clusters {
			m.clusters = append(m.clusters, c.Name)
			if c.Role == cluster.RoleHub {
				m.hubs[c.Name] = true
			}
		}
		return m.fetch()
	case changeMsg:
		m.changing = false
		if msg.err != nil {
			m.flash, m.flashErr = fmt.Sprintf("make a change (scale the sample to %d) failed: %s", msg.replicas, m.c.errText(msg.err)), true
			return nil
		}
		m.flash, m.flashErr = fmt.Sprintf("committed %s: scale the sample to %d replicas; watch REVISION reach every spoke",
			repo.ShortSHA(msg.sha), msg.replicas), false
		return m.fetch()
	case appsMsg:
		var keep string
		if r, ok := m.selected(); ok {
			keep = r.key()
		}
		m.listed, m.loaded, m.loading = msg.results, true, false
		m.compose()
		m.restoreCursor(keep)
		if m.again {
			m.again = false
			return m.fetch()
		}
	case liveMsg:
		var keep string
		if r, ok := m.selected(); ok {
			keep = r.key()
		}
		was := m.live.AppsSynced
		m.live = msg.live
		if m.live.AppsSynced && m.watched(m.live.Hub) {
			m.loaded = true
		}
		m.compose()
		m.restoreCursor(keep)
		if was && !m.live.AppsSynced {
			return m.fetch() // the watch stopped: list the hub again
		}
	case appActionMsg:
		if msg.err != nil {
			m.flash, m.flashErr = fmt.Sprintf("%s of %s on %s failed: %s", msg.action, msg.app, msg.cluster, m.c.errText(msg.err)), true
		} else {
			m.flash, m.flashErr = fmt.Sprintf("%s of %s on %s requested", msg.action, msg.app, msg.cluster), false
		}
		return m.fetch()
	case diffMsg:
		if m.diff != nil {
			return m.diff.update(msg)
		}
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

// openDiff shows the diff of the open Application, asking for it anew.
func (m *appsModel) openDiff() tea.Cmd {
	r, ok := m.selected()
	if !ok {
		return nil
	}
	m.diffSeq++
	m.diff = newDiff(m.c, m.diffSeq, r.cluster, r.app.Namespace, r.app.Name)
	m.diff.setSize(m.width, m.height)
	return m.diff.fetch()
}

// restoreCursor keeps the cursor on the same Application when the list
// changes under it, so a refresh never moves the user's selection.
func (m *appsModel) restoreCursor(keep string) {
	refs := m.refs()
	for i, r := range refs {
		if r.key() == keep {
			m.cursor = i
			return
		}
	}
	m.cursor = max(0, min(m.cursor, len(refs)-1))
}

// watched says cluster's Applications come from the watch.
func (m *appsModel) watched(cluster string) bool {
	return m.live.AppsSynced && m.live.Hub == cluster && m.hubs[cluster]
}

// compose builds what is shown, in cluster order, from the listing and the
// watch.
func (m *appsModel) compose() {
	listed := map[string]clusterApps{}
	for _, r := range m.listed {
		listed[r.cluster] = r
	}
	var out []clusterApps
	for _, c := range m.clusters {
		if m.watched(c) {
			out = append(out, clusterApps{cluster: c, apps: m.live.Apps})
		} else if r, ok := listed[c]; ok {
			out = append(out, r)
		}
	}
	m.results = out
}

// fetch lists, in the background, the Applications of every cluster that
// is not watched.
func (m *appsModel) fetch() tea.Cmd {
	if m.loading {
		m.again = true
		return nil
	}
	var names []string
	for _, c := range m.clusters {
		if !m.watched(c) {
			names = append(names, c)
		}
	}
	if len(names) == 0 {
		m.listed = nil
		m.compose()
		if len(m.clusters) == 0 || m.watched(m.live.Hub) {
			m.loaded = true
		}
		return nil
	}
	m.loading = true
	ctx, src := m.c.ctx, m.c.src
	return func() tea.Msg {
		// Clusters are listed in parallel so one that does not answer
		// costs its timeout once, not once per cluster.
		out := make([]clusterApps, len(names))
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Go(func() {
				apps, err := src.Apps(ctx, name)
				out[i] = clusterApps{cluster: name, apps: apps, err: err}
			})
		}
		wg.Wait()
		return appsMsg{results: out}
	}
}

func (m *appsModel) key(msg tea.KeyMsg) tea.Cmd {
	k := m.c.keys
	n := len(m.refs())
	if m.diff != nil {
		switch {
		case key.Matches(msg, k.Back):
			m.diff = nil
		case key.Matches(msg, k.Diff):
			return m.openDiff()
		default:
			return m.diff.update(msg)
		}
		return nil
	}
	switch {
	case m.open != "" && key.Matches(msg, k.Diff):
		return m.openDiff()
	case key.Matches(msg, k.Back):
		m.open = ""
	case m.open == "" && key.Matches(msg, k.Up):
		m.cursor = max(0, m.cursor-1)
	case m.open == "" && key.Matches(msg, k.Down):
		m.cursor = max(0, min(n-1, m.cursor+1))
	case m.open == "" && key.Matches(msg, k.Top):
		m.cursor = 0
	case m.open == "" && key.Matches(msg, k.Bottom):
		m.cursor = max(0, n-1)
	case m.open == "" && key.Matches(msg, k.Open):
		if r, ok := m.selected(); ok {
			m.open = r.key()
		}
	case key.Matches(msg, k.Sync):
		return m.action("sync", m.c.src.Sync)
	case key.Matches(msg, k.Refresh):
		return m.action("refresh", m.c.src.Refresh)
	case key.Matches(msg, k.MakeChange):
		return m.makeChange()
	}
	return nil
}

// makeChange commits the next replica count in the background; the commit
// then shows in the status line, and in REVISION as each spoke syncs it.
func (m *appsModel) makeChange() tea.Cmd {
	if m.changing {
		return nil
	}
	n := m.replicas
	m.replicas = n%4 + 1
	m.changing = true
	m.flash, m.flashErr = fmt.Sprintf("committing a change: scale the sample to %d replicas…", n), false
	ctx, src := m.c.ctx, m.c.src
	return func() tea.Msg {
		sha, err := src.MakeChange(ctx, n)
		return changeMsg{replicas: n, sha: sha, err: err}
	}
}

func (m *appsModel) action(name string, do func(ctx context.Context, cluster, namespace, app string) error) tea.Cmd {
	r, ok := m.selected()
	if !ok {
		return nil
	}
	ctx, cl, ns, app := m.c.ctx, r.cluster, r.app.Namespace, r.app.Name
	m.flash, m.flashErr = fmt.Sprintf("%s of %s on %s…", name, app, cl), false
	return func() tea.Msg {
		return appActionMsg{action: name, cluster: cl, app: app, err: do(ctx, cl, ns, app)}
	}
}

func (m *appsModel) View() string {
	var body string
	switch {
	case m.diff != nil:
		body = m.diff.view()
	case m.open != "":
		body = m.detailView()
	default:
		body = m.listView()
	}
	if m.flash != "" {
		style := m.c.styles.Muted
		if m.flashErr {
			style = m.c.styles.Error
		}
		body = strings.TrimRight(body, "\n") + "\n\n" + wrap(style.Render(m.flash), m.width, "")
	}
	return body
}

func (m *appsModel) listView() string {
	st := m.c.styles
	switch {
	case len(m.clusters) == 0 && m.loaded:
		return "No clusters: bring the workbench up on the Clusters screen.\n"
	case !m.loaded:
		return st.Muted.Render("Listing Applications…") + "\n"
	}
	rows := [][]string{{
		st.Header.Render("CLUSTER"), st.Header.Render("SPOKE"), st.Header.Render("NAME"), st.Header.Render("SYNC"),
		st.Header.Render("HEALTH"), st.Header.Render("REVISION"), st.Header.Render("LAST SYNC"),
	}}
	// notes are rows that are not Applications (errors, empty clusters);
	// they are laid out apart so their long text does not widen a column.
	type note struct {
		after int
		text  string
	}
	var notes []note
	nameWidth := len("CLUSTER")
	for _, r := range m.results {
		nameWidth = max(nameWidth, len(r.cluster))
	}
	for _, r := range m.results {
		switch {
		case r.err != nil:
			notes = append(notes, note{len(rows), wrap(fmt.Sprintf("  %-*s  %s", nameWidth, r.cluster, st.Error.Render("✗ "+m.c.errText(r.err))),
				m.width, strings.Repeat(" ", 2+nameWidth+2+2))})
		case len(r.apps) == 0:
			where := "in tether-system"
			if m.hubs[r.cluster] {
				where = "in any namespace"
			}
			notes = append(notes, note{len(rows), fmt.Sprintf("  %-*s  %s", nameWidth, r.cluster, st.Muted.Render("no Applications "+where))})
		}
		for _, a := range r.apps {
			rows = append(rows, []string{r.cluster, m.spoke(r.cluster, &a), a.Name, m.syncCell(&a), m.healthCell(a.Status.Health.Status),
				cmp.Or(repo.ShortSHA(a.Status.Sync.Revision), "-"), m.lastSync(&a)})
		}
	}
	laid := columns(rows, 2)
	lines := []string{"  " + laid[0]}
	cursorLine := -1
	ni := 0
	for i := 1; i <= len(laid); i++ {
		for ni < len(notes) && notes[ni].after == i {
			lines = append(lines, notes[ni].text)
			ni++
		}
		if i == len(laid) {
			break
		}
		// The marker keeps the selection visible without colour.
		l := "  " + laid[i]
		if i-1 == m.cursor {
			cursorLine = len(lines)
			l = st.Selected.Render("> " + laid[i])
		}
		lines = append(lines, l)
	}
	return strings.Join(m.window(lines, cursorLine), "\n") + "\n"
}

// window keeps the header and scrolls the rest so the cursor stays in view.
func (m *appsModel) window(lines []string, cursor int) []string {
	room := m.height - 3 // header and the flash line below
	if room <= 0 || len(lines)-1 <= room {
		return lines
	}
	body := lines[1:]
	cursor--
	if cursor >= 0 {
		if cursor < m.offset {
			m.offset = cursor
		}
		if cursor >= m.offset+room {
			m.offset = cursor - room + 1
		}
	}
	m.offset = max(0, min(m.offset, len(body)-room))
	return append([]string{lines[0]}, body[m.offset:m.offset+room]...)
}

func (m *appsModel) syncCell(a *v1alpha1.Application) string {
	st := m.c.styles
	s := a.Status.Sync.Status
	var out string
	switch s {
	case v1alpha1.SyncStatusSynced:
		out = st.OK.Render(s)
	case v1alpha1.SyncStatusOutOfSync:
		out = st.Warn.Render(s)
	default:
		out = st.Muted.Render(cmp.Or(s, "-"))
	}
	if op := a.Status.OperationState; op != nil && op.Phase == v1alpha1.OperationRunning {
		out += st.Muted.Render(" (syncing)")
	} else if a.Operation != nil {
		out += st.Muted.Render(" (queued)")
	}
	return out
}

func (m *appsModel) healthCell(h string) string {
	st := m.c.styles
	switch h {
	case "Healthy":
		return st.OK.Render(h)
	case "Degraded", "Missing":
		return st.Error.Render(h)
	case "Progressing":
		return st.Warn.Render(h)
	}
	return st.Muted.Render(cmp.Or(h, "-"))
}

func (m *appsModel) lastSync(a *v1alpha1.Application) string {
	n := len(a.Status.History)
	if n == 0 {
		return "-"
	}
	return took(m.c.now().Sub(a.Status.History[n-1].DeployedAt.Time)) + " ago"
}

func (m *appsModel) detailView() string {
	st := m.c.styles
	r, ok := m.selected()
	if !ok {
		return st.Muted.Render("The Application "+m.open+" is gone.") + "\n"
	}
	a := r.app
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n\n", st.Title.Render(a.Name), st.Muted.Render("on "+r.cluster+" · "+a.Namespace))
	src := a.Spec.Source
	kv := [][]string{
		{st.Header.Render("Source"), fmt.Sprintf("%s (revision %s, path %s)", src.RepoURL, cmp.Or(src.TargetRevision, "-"), cmp.Or(src.Path, "-"))},
		{st.Header.Render("Destination"), "namespace " + a.Spec.Destination.Namespace},
		{st.Header.Render("Sync"), m.syncCell(a) + " at " + cmp.Or(repo.ShortSHA(a.Status.Sync.Revision), "-")},
		{st.Header.Render("Health"), m.healthCell(a.Status.Health.Status) + msgSuffix(a.Status.Health.Message)},
	}
	if op := a.Status.OperationState; op != nil {
		kv = append(kv, []string{st.Header.Render("Last sync"), op.Phase + msgSuffix(op.Message)})
	}
	for _, c := range a.Status.Conditions {
		kv = append(kv, []string{st.Header.Render("Condition"), st.Error.Render(c.Type + ": " + c.Message)})
	}
	// Conditions are errors, with what to do at the end: wrapped under
	// their value rather than cut.
	keyW := 0
	for _, r := range kv {
		keyW = max(keyW, lipgloss.Width(r[0]))
	}
	for _, l := range columns(kv, 2) {
		b.WriteString(wrap(l, m.width, strings.Repeat(" ", keyW+2)) + "\n")
	}
	b.WriteString("\n")
	if len(a.Status.Resources) == 0 {
		b.WriteString(st.Muted.Render("No resources reported yet.") + "\n")
		return b.String()
	}
	table := func(nsColumn bool) []string {
		rows := [][]string{{st.Header.Render("KIND"), st.Header.Render("NAMESPACE"), st.Header.Render("NAME"),
			st.Header.Render("SYNC"), st.Header.Render("HEALTH"), st.Header.Render("MESSAGE")}}
		for _, res := range a.Status.Resources {
			health, message := "-", ""
			if res.Health != nil {
				health, message = res.Health.Status, res.Health.Message
			}
			syncS := res.Status
			if res.RequiresPruning {
				syncS += " (prune)"
			}
			rows = append(rows, []string{res.Kind, cmp.Or(res.Namespace, "-"), res.Name, syncS, m.healthCell(health), message})
			if !nsColumn && res.Namespace != "" && res.Namespace != a.Spec.Destination.Namespace {
				rows[len(rows)-1][2] = res.Namespace + "/" + res.Name
			}
		}
		if !nsColumn {
			rows = without(rows, []int{1})
		}
		return columns(rows, 2)
	}
	// Narrow terminals lose the NAMESPACE column before the health
	// message: most resources are in the Destination's namespace, and
	// the others' names say theirs.
	lines := table(true)
	if m.width > 0 && slices.ContainsFunc(lines, func(l string) bool { return lipgloss.Width(l) > m.width }) {
		lines = table(false)
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func msgSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
