package cluster

import (
	"errors"
	"fmt"

	"github.com/tether-dev/tether/cluster/internal/providers/kind"
	"github.com/tether-dev/tether/cluster/internal/providers/kind/nodeimage"
	"github.com/tether-dev/tether/cluster/internal/state"
)

// The errors below say what state the workbench is in, in the package's
// own words; the tether command and the terminal UI look for them with
// errors.Is and errors.As and add what the user types or presses.

// ErrIsHub refuses removing the hub as a spoke.
var ErrIsHub = errors.New("it is the hub, which every spoke depends on")

// ErrNoCA is returned when the workbench CA is asked for before any
// cluster was made.
var ErrNoCA = errors.New("the workbench has no CA yet")

// NoClustersError says the workbench in StateDir records no clusters: it
// was never brought up, or was taken down.
type NoClustersError struct {
	StateDir string // "" when the caller does not know it
}

func (e *NoClustersError) Error() string {
	if e.StateDir == "" {
		return "the workbench has no clusters"
	}
	return fmt.Sprintf("the workbench in %s has no clusters", e.StateDir)
}

// UnknownClusterError says the workbench in StateDir has no cluster Name.
type UnknownClusterError struct {
	Name, StateDir string
}

func (e *UnknownClusterError) Error() string {
	return fmt.Sprintf("no cluster %q in the workbench (%s)", e.Name, e.StateDir)
}

// ProviderSwitchError refuses a provider other than the one the
// workbench's clusters run on: clusters of two providers cannot mix.
type ProviderSwitchError struct {
	StateDir, Recorded, Requested string
}

func (e *ProviderSwitchError) Error() string {
	return fmt.Sprintf("the workbench in %s runs on the %s provider, not %s", e.StateDir, e.Recorded, e.Requested)
}

// FieldError says what is wrong with one field of the configuration
// (Field as in tether.yaml: kind.nodeImage, context), and for which
// cluster when the field is a cluster's. Err names the field in its text.
type FieldError struct {
	Field   string
	Cluster string // "" for a workbench-wide field
	// Provider, when set, is the only provider the field is for: it was
	// given with another.
	Provider string
	Err      error
}

func (e *FieldError) Error() string {
	if e.Cluster == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("cluster %q: %v", e.Cluster, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// DockerEngineError says no Docker engine answers, which the kind
// provider needs.
type DockerEngineError = kind.EngineError

// RepairError says a kind cluster is not as the workbench needs it, and
// whether taking the workbench down (Down) and bringing it up (Up) mends it.
type RepairError = kind.RepairError

// StateError says the workbench's state file cannot be used: damaged
// (Err), or written by a tether of another format Version.
type StateError = state.UnreadableError

// CannotBuildError says this machine cannot build the kind node image
// (with NeedsRoot: not without root).
type CannotBuildError = nodeimage.CannotBuildError

// NodeImageError says the kind provider has no node image it can use.
type NodeImageError = kind.NodeImageError
