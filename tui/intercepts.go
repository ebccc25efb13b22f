package tui

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tether-dev/tether/intercept"
)

// interceptsModel is the Intercepts screen: the intercepts of every
// cluster, stopping the selected one, and a form that starts one held by
// this process until the UI quits.
type interceptsModel struct {
	c             *common
	width, height int

	clusters []string
	list     []InterceptInfo
	err      error
	loaded   bool
	// loading keeps one listing in flight; again asks for one more after
	// it (a probe or an action arrived meanwhile).
	loading, again bool

	cursor int
	// pick is the cluster/name of an intercept just started here: the
	// cursor goes to it when a listing has it, so what is under the table
	// is about it.
	pick string
	// form is the start form; nil when closed. starting is set while the
	// start it submitted runs, so a second enter does not start another.
	form     *form
	starting bool
	// stopping names the intercepts whose stop is in flight.
	stopping map[string]bool
	flash    string
	flashErr bool
}

// The start form's fields, in order.
const (
	fieldCluster = iota
	fieldNamespace
	fieldService
	fieldPort
	fieldTo
	fieldHeaders
)

// interceptsMsg carries one listing of every cluster's intercepts.
type interceptsMsg struct {
	list []InterceptInfo
	err  error
}

// interceptActionMsg ends a start or a stop; a start says where this
// machine reaches the intercepted Service (reach, "" when unknown).
type interceptActionMsg struct {
	action, cluster, name, target, reach string
	err                                  error
}

func newIntercepts(c *common) *interceptsModel {
	return &interceptsModel{c: c, stopping: map[string]bool{}}
}

func (m *interceptsModel) Title() string { return "Intercepts" }

func (m *interceptsModel) SetSize(w, h int) { m.width, m.height = w, h }

// Capturing: the start form reads text.
func (m *interceptsModel) Capturing() bool { return m.form != nil }

func (m *interceptsModel) ShortHelp() []key.Binding {
	k := m.c.keys
	if m.form != nil {
		return []key.Binding{k.NextField, k.PrevField, k.Submit, k.Cancel}
	}
	return []key.Binding{k.Up, k.Down, k.NewIntercept, k.StopIntercept}
}

func (m *interceptsModel) FullHelp() [][]key.Binding {
	k := m.c.keys
	if m.form != nil {
		return [][]key.Binding{m.ShortHelp()}
	}
	return [][]key.Binding{{k.Up, k.Down}, {k.NewIntercept, k.StopIntercept}}
}

func (m *interceptsModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		if msg.err != nil {
			return nil
		}
		m.clusters = m.clusters[:0]
		for _, c := range msg.snap.Clusters {
			m.clusters = append(m.clusters, c.Name)
		}
		return m.fetch()
	case interceptsMsg:
		var keep string
		if r, ok := m.selected(); ok {
			keep = r.Cluster + "/" + r.Name
		}
		if m.pick != "" && slices.ContainsFunc(msg.list, func(r InterceptInfo) bool { return r.Cluster+"/"+r.Name == m.pick }) {
			keep, m.pick = m.pick, ""
		}
		m.list, m.err, m.loaded, m.loading = msg.list, msg.err, true, false
		m.cursor = max(0, min(m.cursor, len(m.list)-1))
		for i, r := range m.list {
			if r.Cluster+"/"+r.Name == keep {
				m.cursor = i
			}
		}
		if m.again {
			m.again = false
			return m.fetch()
		}
	case interceptActionMsg:
		return m.actionDone(msg)
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

func (m *interceptsModel) selected() (InterceptInfo, bool) {
	if m.cursor < 0 || m.cursor >= len(m.list) {
		return InterceptInfo{}, false
	}
	return m.list[m.cursor], true
}

// fetch lists in the background; each status probe asks again, so
// intercepts started or stopped elsewhere come and go on their own.
func (m *interceptsModel) fetch() tea.Cmd {
	if len(m.clusters) == 0 {
		m.list, m.err, m.loaded = nil, nil, true
		return nil
	}
	if m.loading {
		m.again = true
		return nil
	}
	m.loading = true
	ctx, src := m.c.ctx, m.c.src
	return func() tea.Msg {
		list, err := src.Intercepts(ctx)
		return interceptsMsg{list: list, err: err}
	}
}

func (m *interceptsModel) actionDone(msg interceptActionMsg) tea.Cmd {
	switch msg.action {
	case "start":
		m.starting = false
		if msg.err != nil {
			if m.form != nil {
				m.form.err = "start failed: " + m.c.errText(msg.err)
			}
			m.flash, m.flashErr = "", false
			return nil
		}
		m.form = nil
		m.pick = msg.cluster + "/" + msg.name
		m.flash, m.flashErr = startedFlash(msg), false
	case "stop":
		delete(m.stopping, msg.name)
		if msg.err != nil {
			m.flash, m.flashErr = fmt.Sprintf("stop of %s failed: %s", msg.name, m.c.errText(msg.err)), true
		} else {
			m.flash, m.flashErr = fmt.Sprintf("intercept %s stopped; %s is as it was", msg.name, msg.target), false
		}
	}
	return m.fetch()
}

// startedFlash says a start worked and, when the source knows it, where
// to reach the intercepted Service from this machine: the first thing a
// newcomer wants to try.
func startedFlash(msg interceptActionMsg) string {
	if msg.reach == "" {
		return fmt.Sprintf("intercept %s started on %s; it stops when this UI quits", msg.name, msg.target)
	}
	return fmt.Sprintf("intercept %s started on %s: reach it at %s from this machine; it stops when this UI quits", msg.name, msg.target, msg.reach)
}

func (m *interceptsModel) key(msg tea.KeyMsg) tea.Cmd {
	k := m.c.keys
	if m.form != nil {
		switch {
		case key.Matches(msg, k.Cancel):
			if !m.starting {
				m.form = nil
			}
			return nil
		case key.Matches(msg, k.Submit):
			return m.submit()
		}
		if m.starting {
			return nil // the fields are what is being started
		}
		return m.form.update(msg)
	}
	switch {
	case key.Matches(msg, k.Up):
		m.cursor = max(0, m.cursor-1)
	case key.Matches(msg, k.Down):
		m.cursor = max(0, min(len(m.list)-1, m.cursor+1))
	case key.Matches(msg, k.NewIntercept):
		if len(m.clusters) == 0 {
			m.flash, m.flashErr = "No clusters to intercept in: bring the workbench up on the Clusters screen.", true
			return nil
		}
		m.openForm()
	case key.Matches(msg, k.StopIntercept):
		return m.stop()
	}
	return nil
}

func (m *interceptsModel) openForm() {
	k := m.c.keys
	def := ""
	if len(m.clusters) > 0 {
		def = m.clusters[len(m.clusters)-1] // a spoke, where workloads run
	}
	m.flash = ""
	m.form = newForm(m.c.styles, k.NextField, k.PrevField,
		formField{label: "Cluster", value: def, hint: strings.Join(m.clusters, ", "), limit: 63},
		formField{label: "Namespace", value: "default", limit: 63},
		formField{label: "Service", placeholder: "name of the Service", limit: 63},
		formField{label: "Port", placeholder: "Service port, e.g. 80", limit: 5},
		formField{label: "To", placeholder: "127.0.0.1:8080", hint: "where traffic goes on this machine", limit: 100},
		formField{label: "Headers", placeholder: "empty: every connection", hint: "NAME=VALUE, comma-separated: only HTTP requests carrying them", limit: 200},
	)
}

// spec checks the form and returns what to start, or the first problem
// with the field to fix; the cursor moves there.
func (m *interceptsModel) spec() (InterceptSpec, int, error) {
	f := m.form
	s := InterceptSpec{Cluster: f.value(fieldCluster), Namespace: f.value(fieldNamespace), Service: f.value(fieldService), To: f.value(fieldTo)}
	switch {
	case s.Cluster == "":
		return s, fieldCluster, fmt.Errorf("cluster: give one of %s", strings.Join(m.clusters, ", "))
	case !slices.Contains(m.clusters, s.Cluster):
		return s, fieldCluster, fmt.Errorf("cluster %q is not in the workbench (clusters: %s)", s.Cluster, strings.Join(m.clusters, ", "))
	case s.Namespace == "":
		return s, fieldNamespace, fmt.Errorf("namespace: give the Service's namespace, e.g. default")
	case len(validation.IsDNS1123Label(s.Namespace)) > 0:
		return s, fieldNamespace, fmt.Errorf("namespace %q is not a namespace name (lower-case letters, digits and -)", s.Namespace)
	case s.Service == "":
		return s, fieldService, fmt.Errorf("service: give the name of the Service to intercept")
	case len(validation.IsDNS1035Label(s.Service)) > 0:
		return s, fieldService, fmt.Errorf("service %q is not a Service name (lower-case letters, digits and -, starting with a letter)", s.Service)
	}
	port, err := strconv.Atoi(f.value(fieldPort))
	if err != nil || port < 1 || port > 65535 {
		return s, fieldPort, fmt.Errorf("port %q: give the Service port to intercept, a number from 1 to 65535", f.value(fieldPort))
	}
	s.Port = int32(port)
	if s.To == "" {
		return s, fieldTo, fmt.Errorf("to: give the local address traffic goes to, e.g. 127.0.0.1:8080")
	}
	host, p, err := net.SplitHostPort(s.To)
	if n, perr := strconv.Atoi(p); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return s, fieldTo, fmt.Errorf("to %q: give host:port, e.g. 127.0.0.1:8080", s.To)
	}
	for _, h := range strings.Split(f.value(fieldHeaders), ",") {
		if h = strings.TrimSpace(h); h != "" {
			s.Headers = append(s.Headers, h)
		}
	}
	if _, err := intercept.ParseHeaders(s.Headers); err != nil {
		return s, fieldHeaders, err
	}
	return s, 0, nil
}

func (m *interceptsModel) submit() tea.Cmd {
	if m.starting {
		return nil
	}
	spec, field, err := m.spec()
	if err != nil {
		m.form.err = m.c.errText(err)
		m.form.focusField(field)
		return nil
	}
	m.starting = true
	m.form.err = ""
	m.flash, m.flashErr = fmt.Sprintf("starting an intercept of %s port %d…", spec.Target(), spec.Port), false
	ctx, src := m.c.ctx, m.c.src
	return func() tea.Msg {
		name, reach, err := src.StartIntercept(ctx, spec)
		return interceptActionMsg{action: "start", cluster: spec.Cluster, name: name, target: spec.Target(), reach: reach, err: err}
	}
}

func (m *interceptsModel) stop() tea.Cmd {
	r, ok := m.selected()
	if !ok || m.stopping[r.Name] {
		return nil
	}
	m.stopping[r.Name] = true
	m.flash, m.flashErr = fmt.Sprintf("stopping %s…", r.Name), false
	ctx, src := m.c.ctx, m.c.src
	target := r.Cluster + "/" + r.Namespace + "/" + r.Service
	return func() tea.Msg {
		err := src.StopIntercept(ctx, r.Cluster, r.Name)
		return interceptActionMsg{action: "stop", cluster: r.Cluster, name: r.Name, target: target, err: err}
	}
}

func (m *interceptsModel) View() string {
	st := m.c.styles
	var b strings.Builder
	if m.form != nil {
		title := st.Title.Render("Start an intercept")
		if m.starting {
			title += " " + st.Muted.Render("(starting: installing the traffic-agent and taking the Service over…)")
		}
		b.WriteString(wrap(title, m.width, "") + "\n\n" + m.form.view(m.width))
		b.WriteString("\n" + wrap(st.Muted.Render("The intercept runs as long as this UI: quitting stops it and restores the Service."), m.width, "") + "\n")
		return b.String()
	}
	switch {
	case len(m.clusters) == 0 && m.loaded:
		b.WriteString("No clusters: bring the workbench up on the Clusters screen.\n")
	case !m.loaded:
		b.WriteString(st.Muted.Render("Listing intercepts…") + "\n")
	default:
		if m.err != nil {
			b.WriteString(wrap(st.Error.Render("✗ "+m.c.errText(m.err)), m.width, "  ") + "\n")
		}
		b.WriteString(m.table())
	}
	if m.flash != "" {
		style := st.Muted
		if m.flashErr {
			style = st.Error
		}
		b.WriteString("\n" + wrap(style.Render(m.flash), m.width, "") + "\n")
	}
	return b.String()
}

func (m *interceptsModel) table() string {
	st := m.c.styles
	if len(m.list) == 0 {
		return st.Muted.Render(fmt.Sprintf("No intercepts. Press %s to start one.", m.c.keys.NewIntercept.Help().Key)) + "\n"
	}
	header := []string{"NAME", "TARGET", "PORT", "MATCH", "TO", "FROM THIS MACHINE", "TRAFFIC", "STATE"}
	rows := [][]string{make([]string, len(header))}
	for i, h := range header {
		rows[0][i] = st.Header.Render(h)
	}
	for _, r := range m.list {
		// "held" is an alive intercept this UI stops when it quits;
		// an expired lease means its holder is gone.
		state := st.OK.Render("✓ alive")
		switch {
		case m.stopping[r.Name]:
			state = st.Warn.Render("stopping…")
		case !r.Alive:
			state = st.Error.Render("✗ expired")
		case r.Held:
			state = st.OK.Render("✓ held")
		}
		rows = append(rows, []string{r.Name, r.Cluster + "/" + r.Namespace + "/" + r.Service, strconv.Itoa(int(r.Port)),
			joinHeaders(r.Headers), cmp.Or(r.To, "-"), cmp.Or(r.Reach, "-"), cmp.Or(r.Traffic, "-"), state})
	}
	// Narrow terminals lose the counters first, then where to reach the
	// Service from here (a long URL), then the name (TARGET and PORT say
	// which intercept it is); STATE, the one column that says whether it
	// works, stays. The selected row's dropped cells are shown under the
	// table, so its address is on the screen at any width.
	laid, dropped := fitColumns(rows, 2, m.width-2, 6, 5, 0)
	var b strings.Builder
	b.WriteString("  " + laid[0] + "\n")
	held := false
	for i, l := range laid[1:] {
		held = held || m.list[i].Held
		// The marker keeps the selection visible without colour.
		if i == m.cursor {
			b.WriteString(st.Selected.Render("> "+l) + "\n")
		} else {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(dropped) > 0 && m.cursor < len(m.list) {
		var parts []string
		for _, c := range slices.Sorted(slices.Values(dropped)) {
			parts = append(parts, header[c]+" "+rows[m.cursor+1][c])
		}
		b.WriteString(wrap(st.Muted.Render("  "+strings.Join(parts, " · ")), m.width, "  ") + "\n")
	}
	if held {
		b.WriteString("\n" + st.Muted.Render("held: started here; quitting the UI stops it and restores the Service") + "\n")
	}
	return b.String()
}
