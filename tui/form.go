package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/tether-dev/tether/tui/styles"
)

// newInput is a one-line text field. Its cursor does not blink: a blinking
// cursor redraws the screen twice a second for as long as a form is open,
// and makes golden files depend on timing.
func newInput(st *styles.Styles, placeholder string, limit int) textinput.Model {
	in := textinput.New()
	in.Prompt = ""
	in.Placeholder = placeholder
	in.PlaceholderStyle = st.Muted
	in.CharLimit = limit
	in.Cursor.SetMode(cursor.CursorStatic)
	return in
}

// form is a column of labelled text fields with one focused, the way the
// Intercepts screen starts an intercept and the Clusters screen asks for a
// spoke's name. It knows nothing of what the fields mean: its owner checks
// them when the user submits.
type form struct {
	st     *styles.Styles
	keys   formKeys
	labels []string
	hints  []string
	inputs []textinput.Model
	focus  int
	// err is the owner's verdict on the last submit, shown under the
	// fields until the user edits again.
	err string
}

type formKeys struct{ next, prev key.Binding }

type formField struct {
	label, placeholder, value, hint string
	limit                           int
}

func newForm(st *styles.Styles, next, prev key.Binding, fields ...formField) *form {
	f := &form{st: st, keys: formKeys{next: next, prev: prev}}
	for _, fl := range fields {
		in := newInput(st, fl.placeholder, fl.limit)
		in.SetValue(fl.value)
		f.labels = append(f.labels, fl.label)
		f.hints = append(f.hints, fl.hint)
		f.inputs = append(f.inputs, in)
	}
	f.inputs[0].Focus()
	return f
}

// value is the trimmed text of field i.
func (f *form) value(i int) string { return strings.TrimSpace(f.inputs[i].Value()) }

// update moves between fields or types into the focused one; submitting
// and cancelling are the owner's keys.
func (f *form) update(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, f.keys.next):
		f.move(1)
		return nil
	case key.Matches(msg, f.keys.prev):
		f.move(-1)
		return nil
	}
	f.err = ""
	var cmd tea.Cmd
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	return cmd
}

func (f *form) move(d int) {
	f.inputs[f.focus].Blur()
	f.focus = (f.focus + d + len(f.inputs)) % len(f.inputs)
	f.inputs[f.focus].Focus()
}

// focusField puts the cursor on field i, where the owner found a problem.
func (f *form) focusField(i int) {
	f.inputs[f.focus].Blur()
	f.focus = i
	f.inputs[i].Focus()
}

// view lays the form out in width cells (0: no limit). A hint that does
// not fit beside its field goes on the line under it.
func (f *form) view(width int) string {
	labelW := 0
	for _, l := range f.labels {
		labelW = max(labelW, len(l))
	}
	indent := strings.Repeat(" ", 2+labelW+2)
	var b strings.Builder
	for i, in := range f.inputs {
		// The marker shows the focused field where colour does not.
		mark := "  "
		if i == f.focus {
			mark = f.st.Title.Render("> ")
		}
		line := mark + f.st.Header.Render(padRight(f.labels[i], labelW)) + "  " + in.View()
		if h := f.hints[i]; h != "" {
			beside := line + "  " + f.st.Muted.Render(h)
			if width <= 0 || lipgloss.Width(beside) <= width {
				line = beside
			} else {
				line += "\n" + indent + wrap(f.st.Muted.Render(h), width-len(indent), indent)
			}
		}
		b.WriteString(line + "\n")
	}
	if f.err != "" {
		b.WriteString("\n" + wrap(f.st.Error.Render("✗ "+f.err), width, "  ") + "\n")
	}
	return b.String()
}

func padRight(s string, w int) string {
	if len(s) >= w {
		return s
	}
	return s + strings.Repeat(" ", w-len(s))
}
