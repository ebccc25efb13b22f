package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

func TestRootSwitchesScreens(t *testing.T) {
	m := newTestModel(&fakeSource{})
	steps := []struct {
		key  string
		want int
	}{{"tab", 1}, {"tab", 2}, {"tab", 3}, {"tab", 4}, {"tab", 5}, {"tab", 0}, {"shift+tab", 5}, {"1", 0}, {"4", 3}, {"6", 5}, {"5", 4}, {"2", 1}}
	for _, s := range steps {
		press(m, s.key)
		if m.active != s.want {
			t.Fatalf("after %s: screen %d, want %d", s.key, m.active, s.want)
		}
	}
}

func TestRootHelpToggles(t *testing.T) {
	m := newTestModel(&fakeSource{})
	short := m.View()
	if !strings.Contains(short, "u bring up • d bring down • a add spoke • x remove spoke • tab next screen • ? more keys • q quit") {
		t.Errorf("short help missing or reordered:\n%s", short)
	}
	press(m, "?")
	full := m.View()
	if !strings.Contains(full, "shift+tab") || !strings.Contains(full, "1-6") {
		t.Errorf("full help should list every key:\n%s", full)
	}
	for _, v := range []string{short, full} {
		if n := lipgloss.Height(v); n != 30 {
			t.Errorf("view is %d lines, want the terminal's 30:\n%s", n, v)
		}
	}
}

func TestRootResizes(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps()}
	m := newTestModel(src)
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	for _, size := range [][2]int{{100, 30}, {80, 24}, {60, 12}, {40, 8}, {150, 50}} {
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for _, full := range []bool{false, true} {
			if m.help.ShowAll != full {
				press(m, "?")
			}
			for screen := range m.screens {
				m.active = screen
				v := m.View()
				if h := lipgloss.Height(v); h != size[1] {
					t.Errorf("%dx%d screen %d, full help %v: %d lines", size[0], size[1], screen, full, h)
				}
				lines := strings.Split(v, "\n")
				for _, l := range lines {
					if w := lipgloss.Width(l); w > size[0] {
						t.Errorf("%dx%d screen %d, full help %v: line of %d cells: %q", size[0], size[1], screen, full, w, l)
					}
				}
				// The tab bar is one line and its rule.
				if !strings.HasPrefix(lines[1], "─") || !strings.Contains(lines[0], "[") {
					t.Errorf("%dx%d screen %d: the tabs wrap:\n%s", size[0], size[1], screen, v)
				}
			}
		}
	}
}

func TestRootTabsShortenToFit(t *testing.T) {
	m := newTestModel(&fakeSource{})
	for _, c := range []struct {
		width int
		want  string
	}{
		{100, "tether  [1 Clusters]  2 Agents   3 Applications   4 Logs   5 Intercepts   6 Scenarios"},
		{80, "tether  [1 Clusters]  2 Agents   3 Apps   4 Logs   5 Intercepts   6 Scenarios"},
		{75, "[1 Clusters]  2 Agents   3 Apps   4 Logs   5 Intercepts   6 Scenarios"},
		{40, "[1 Clusters]  2   3   4   5   6"},
	} {
		m.Update(tea.WindowSizeMsg{Width: c.width, Height: 24})
		if got := strings.TrimRight(strings.Split(m.View(), "\n")[0], " "); got != c.want {
			t.Errorf("at %d columns the tabs read\n%q, want\n%q", c.width, got, c.want)
		}
	}
}

func TestRootShortHelpKeepsHelpAndQuit(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), apps: sampleApps()}
	m := newTestModel(src)
	press(m, "3")
	for _, c := range []struct {
		width int
		want  string
	}{
		// Room for all but tab, which the tab bar shows anyway.
		{100, "↑/k up • ↓/j down • enter open • s sync • r refresh • c make a change • ? more keys • q quit"},
		// Then the moving keys go, then the screen's last ones.
		{80, "enter open • s sync • r refresh • c make a change • ? more keys • q quit"},
		{50, "enter open • s sync • ? more keys • q quit"},
	} {
		m.Update(tea.WindowSizeMsg{Width: c.width, Height: 24})
		lines := strings.Split(m.View(), "\n")
		if got := lines[len(lines)-1]; got != c.want {
			t.Errorf("at %d columns the help reads\n%q, want\n%q", c.width, got, c.want)
		}
	}
}

func TestRootFullHelpWrapsColumns(t *testing.T) {
	m := newTestModel(&fakeSource{snap: sampleSnapshot()})
	press(m, "3", "?")
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	v := m.View()
	// The columns that do not fit beside the others start a row of
	// their own instead of being dropped for an ellipsis.
	for _, want := range []string{"c make a change", "1-6       go to screen", "? more keys", "q quit"} {
		if !strings.Contains(v, want) {
			t.Errorf("the full help at 80 columns lacks %q:\n%s", want, v)
		}
	}
	if h := m.helpView(); strings.Contains(h, "…") {
		t.Errorf("the full help at 80 columns is cut:\n%s", h)
	}
}

func TestRootQuits(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m := newTestModel(&fakeSource{})
		_, cmd := m.Update(keyMsg(k))
		if cmd == nil {
			t.Fatalf("%s returned no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%s did not quit", k)
		}
	}
}
