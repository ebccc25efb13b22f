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
	for _, size := range [][2]int{{100, 30}, {60, 12}, {40, 8}, {150, 50}} {
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for screen := range m.screens {
			m.active = screen
			v := m.View()
			if h := lipgloss.Height(v); h != size[1] {
				t.Errorf("%dx%d screen %d: %d lines", size[0], size[1], screen, h)
			}
			for _, l := range strings.Split(v, "\n") {
				if w := lipgloss.Width(l); w > size[0] {
					t.Errorf("%dx%d screen %d: line of %d cells: %q", size[0], size[1], screen, w, l)
				}
			}
		}
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
