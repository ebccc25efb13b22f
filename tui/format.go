package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// columns pads cells into aligned columns. Widths are measured without
// escape codes, so cells may be styled before they are laid out (which
// text/tabwriter cannot do).
func columns(rows [][]string, gap int) []string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], lipgloss.Width(c))
		}
	}
	out := make([]string, len(rows))
	for ri, r := range rows {
		var b strings.Builder
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-lipgloss.Width(c)+gap))
			}
		}
		out[ri] = b.String()
	}
	return out
}

// fitColumns lays rows out as columns does, leaving columns out in the
// order of drop until every line fits in width (0: no limit), so a narrow
// terminal loses the least useful columns whole rather than the last ones
// cut mid-word. It returns the lines and the columns it left out.
func fitColumns(rows [][]string, gap, width int, drop ...int) ([]string, []int) {
	var dropped []int
	for {
		laid := columns(without(rows, dropped), gap)
		widest := 0
		for _, l := range laid {
			widest = max(widest, lipgloss.Width(l))
		}
		if width <= 0 || widest <= width || len(dropped) == len(drop) {
			return laid, dropped
		}
		dropped = append(dropped, drop[len(dropped)])
	}
}

// without returns rows less the cells of the columns in cols.
func without(rows [][]string, cols []int) [][]string {
	if len(cols) == 0 {
		return rows
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		for j, c := range r {
			if !slices.Contains(cols, j) {
				out[i] = append(out[i], c)
			}
		}
	}
	return out
}

// wrap breaks s into lines of at most width cells (0: no limit), between
// words where it can, and starts the lines after the first with indent. A
// message cut at the right edge loses what comes last, which in an error
// is usually what to do about it.
func wrap(s string, width int, indent string) string {
	if width <= 0 || ansi.StringWidth(s) <= width {
		return s
	}
	lines := strings.Split(ansi.Wrap(s, max(1, width-len(indent)), ""), "\n")
	for i := 1; i < len(lines); i++ {
		lines[i] = indent + lines[i]
	}
	return strings.Join(lines, "\n")
}

// latest is head and, below it, as many of the last items as fit in room
// lines (room <= 1: all of them), after a line counting the ones left
// out: the newest steps of an operation are the ones the user is waiting
// on. Head and items may take more than a line each (wrapped errors).
func latest(head string, items []string, room int, muted lipgloss.Style) string {
	lines := lipgloss.Height(head)
	for _, it := range items {
		lines += lipgloss.Height(it)
	}
	first := 0
	if room > 1 && lines > room {
		left := room - lipgloss.Height(head) - 1 // the line that counts them
		first = len(items)
		for first > 0 && lipgloss.Height(items[first-1]) <= left {
			left -= lipgloss.Height(items[first-1])
			first--
		}
	}
	var b strings.Builder
	b.WriteString(head + "\n")
	if first > 0 {
		b.WriteString("  " + muted.Render(fmt.Sprintf("… %d earlier steps", first)) + "\n")
	}
	for _, it := range items[first:] {
		b.WriteString(it + "\n")
	}
	return b.String()
}

// fit cuts every line to width and pads or cuts the block to height, so a
// screen never wraps or pushes the help line off the terminal.
func fit(s string, width, height int) string {
	lines := strings.Split(s, "\n")
	if height >= 0 && len(lines) > height {
		lines = lines[:height]
	}
	for i, l := range lines {
		if width > 0 && ansi.StringWidth(l) > width {
			lines[i] = ansi.Truncate(l, width, "…")
		}
	}
	for height >= 0 && len(lines) < height {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// took formats an elapsed time the way progress.Lines does, so the UI and
// CI logs read alike.
func took(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
