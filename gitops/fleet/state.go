package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
)

// State is what Up records in the workbench's state folder.
type State struct {
	Provider string `json:"provider"`
	// GitURL is the sample repository as the agents fetch it.
	GitURL string `json:"gitURL"`
	// LocalGitURL is the sample repository as this machine reaches it
	// (empty on kind: reach it through a port-forward).
	LocalGitURL string `json:"localGitURL,omitempty"`
	// Principal is the principal process's own address (embedded), or the
	// address agents dial (kind: the NodePort of its Service).
	Principal string `json:"principal"`
	// PrincipalHTTP is the principal process's own health and webhook
	// address (embedded), recorded so a restart can keep it.
	PrincipalHTTP string `json:"principalHTTP,omitempty"`
	// PrincipalService is the principal's Service as agents dial it on the
	// embedded provider: the service proxy's pinned loopback address for
	// tether-system/tether-principal:8443. Intercepting that Service moves
	// the agents (see docs/debugging.md).
	PrincipalService string `json:"principalService,omitempty"`
	// PrincipalServiceHTTP is the same Service's HTTP port (health and
	// the Git push webhook, tether-system/tether-principal:8080) as the
	// service proxy serves it on the embedded provider; the Git server
	// posts its push webhooks there, so intercepting port 8080 carries
	// them to a principal run locally along with the agents.
	PrincipalServiceHTTP string `json:"principalServiceHTTP,omitempty"`
	// SampleServices are, on the embedded provider, where each spoke's
	// service proxy serves the sample's Service (web:80) on loopback, by
	// spoke: what `tether sample url` prints and curl reaches. A tether
	// sample server stands in for the sample's kwok pods behind it.
	SampleServices map[string]string `json:"sampleServices,omitempty"`
	Processes      []process.Record  `json:"processes,omitempty"`
	Spokes         []string          `json:"spokes"`
}

func dir(wb *cluster.Workbench) string { return filepath.Join(wb.StateDir(), "fleet") }

func statePath(wb *cluster.Workbench) string { return filepath.Join(dir(wb), "fleet.json") }

func tlsDir(wb *cluster.Workbench, n string) string { return filepath.Join(dir(wb), "tls", n) }

// Load reads the recorded state; nil when the system is not up.
func Load(wb *cluster.Workbench) (*State, error) {
	data, err := os.ReadFile(statePath(wb))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, &DamagedError{fmt.Errorf("fleet state %s is damaged (%v)", statePath(wb), err)}
	}
	return &st, nil
}

func save(wb *cluster.Workbench, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(wb) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(wb))
}
