// Package cli holds tether's cobra commands. Each command parses its flags
// and makes one call into the domain packages; nothing here knows how a
// cluster is made.
package cli
