// Package styles holds the terminal UI's look: one Styles value built by
// New and handed to every screen, so the screens agree on colours and a
// theme change happens in one place.
package styles
