package cluster

import (
	"strings"
	"testing"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

// A pinned apiServerPort a running cluster does not follow is reported,
// naming the cluster, the port it runs on and what to do; a pin that holds,
// no pin, and the existing provider (whose ports are the user's) are not.
func TestPortNotApplied(t *testing.T) {
	running := state.Cluster{Name: "hub", Endpoint: "https://127.0.0.1:41234"}
	msg := portNotApplied(internalTraits(t, ProviderEmbedded), providers.Spec{Name: "hub", APIServerPort: 6443}, running)
	for _, want := range []string{"cluster hub", "127.0.0.1:41234", "apiServerPort 6443", "tether down", "apiServerPort: 41234"} {
		if !strings.Contains(msg, want) {
			t.Errorf("warning %q does not say %q", msg, want)
		}
	}
	for name, tc := range map[string]struct {
		provider string
		port     int
	}{
		"the pin holds":     {ProviderKind, 41234},
		"no pin":            {ProviderEmbedded, 0},
		"existing clusters": {ProviderExisting, 6443},
	} {
		if msg := portNotApplied(internalTraits(t, tc.provider), providers.Spec{Name: "hub", APIServerPort: tc.port}, running); msg != "" {
			t.Errorf("%s: warned %q", name, msg)
		}
	}
}

// internalTraits are what the named provider says of its clusters.
func internalTraits(t *testing.T, name string) providers.Traits {
	t.Helper()
	p, err := newProvider(name, providers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Traits()
}
