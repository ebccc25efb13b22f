package fleet

import (
	"errors"
	"fmt"
)

// The errors below say what state the GitOps system is in, in the
// package's own words; the tether command and the terminal UI look for
// them with errors.Is and errors.As and add what the user types or presses.

// ErrNotUp says the GitOps system has not been brought up: there is no
// fleet record.
var ErrNotUp = errors.New("the GitOps system is not up")

// ErrNoHub says the workbench's clusters include no hub.
var ErrNoHub = errors.New("the workbench has no hub among its clusters")

// DamagedError says the workbench's records contradict themselves or
// cannot be read: only making the workbench again mends it.
type DamagedError struct{ Err error }

func (e *DamagedError) Error() string { return e.Err.Error() }
func (e *DamagedError) Unwrap() error { return e.Err }

// IncompleteError says a change to the fleet stopped part way. Up says
// the GitOps system is not up for the spokes that stay; RemoveSpoke names
// the spoke whose removal is to be run again ("*" for each spoke the hub
// still holds objects of, "" for none).
type IncompleteError struct {
	Err         error
	Up          bool
	RemoveSpoke string
}

func (e *IncompleteError) Error() string { return e.Err.Error() }
func (e *IncompleteError) Unwrap() error { return e.Err }

// NoServiceProxyError says no service proxy of the workbench serves
// Cluster on this machine (Path is the route table that is missing).
type NoServiceProxyError struct{ Cluster, Path string }

func (e *NoServiceProxyError) Error() string {
	return fmt.Sprintf("no service proxy serves cluster %q on this machine (no %s): is it one of the workbench's clusters?", e.Cluster, e.Path)
}

// HubNamespaceError says the hub's service proxy does not serve
// Namespace: it serves only the GitOps system's own.
type HubNamespaceError struct {
	Hub, Namespace, Served, Service string
	Port                            int32
}

func (e *HubNamespaceError) Error() string {
	return fmt.Sprintf("the hub's service proxy serves only namespace %s, not %s/%s:%d", e.Served, e.Namespace, e.Service, e.Port)
}

// AppNotReadyError says Application App did not become what was waited
// for on every spoke in time; Namespace and Context (the hub's kubeconfig
// context) say where to look at the first one still waiting.
type AppNotReadyError struct {
	Err                     error
	App, Namespace, Context string
}

func (e *AppNotReadyError) Error() string { return e.Err.Error() }
func (e *AppNotReadyError) Unwrap() error { return e.Err }
