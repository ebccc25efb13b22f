package tui

import (
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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
