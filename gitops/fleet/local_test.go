package fleet

import (
	"slices"
	"testing"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/sample"
)

func TestLocalWorkload(t *testing.T) {
	if w := localWorkload(providerTraits(t, cluster.ProviderEmbedded)); w.Image != sample.DefaultImage || !slices.Contains(w.Args, "serve") {
		t.Errorf("embedded: %+v, want tether's server with the placeholder image", w)
	}
	if w := localWorkload(providerTraits(t, cluster.ProviderExisting)); w.Image != sample.NginxWorkload.Image {
		t.Errorf("existing: %+v, want a public image", w)
	}
}

// providerTraits are what the named provider says of its clusters.
func providerTraits(t *testing.T, name string) cluster.Traits {
	t.Helper()
	tr, err := cluster.ProviderTraits(name)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
