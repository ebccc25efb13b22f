// Package keys holds the terminal UI's key bindings, built by New so every
// screen and the help line read the same bindings and a rebinding shows up
// in the help at once.
package keys
