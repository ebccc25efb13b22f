package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each provider answers for its own clusters what callers used to tell by
// its name.
func TestProviderTraits(t *testing.T) {
	for name, want := range map[string]Traits{
		ProviderKind:     {ImageStore: true, RunsContainers: true},
		ProviderEmbedded: {LocalComponents: true, ServiceProxy: true},
		ProviderExisting: {LocalComponents: true, RunsContainers: true, Adopted: true},
	} {
		got, err := ProviderTraits(name)
		if err != nil || got != want {
			t.Errorf("%s: traits %+v (%v), want %+v", name, got, err, want)
		}
	}
	if _, err := ProviderTraits("nope"); err == nil {
		t.Error("an unknown provider has traits")
	}
}

// A record an older tether wrote holds no traits; the clusters read from
// it answer them anyway, from their provider.
func TestRecordedClustersHaveTraits(t *testing.T) {
	wb, _ := testWorkbench(t, nil)
	if err := os.MkdirAll(wb.StateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	old := `{"version":1,"provider":"embedded","clusters":[` +
		`{"name":"hub","role":"hub","provider":"embedded","endpoint":"https://127.0.0.1:1","kubeconfig":"/nowhere","created":"2026-01-01T00:00:00Z"},` +
		`{"name":"spoke-1","role":"spoke","provider":"embedded","endpoint":"https://127.0.0.1:2","kubeconfig":"/nowhere","created":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(wb.StateDir(), "state.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	clusters, err := wb.Clusters()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ProviderTraits(ProviderEmbedded)
	for _, c := range clusters {
		if c.Traits != want {
			t.Errorf("%s: traits %+v, want the embedded provider's %+v", c.Name, c.Traits, want)
		}
	}
	// The embedded provider has no image store: LoadImage says so rather
	// than asking kind.
	err = wb.LoadImage(context.Background(), clusters[0], filepath.Join(t.TempDir(), "image.tar"))
	if err == nil || !strings.Contains(err.Error(), "no image store") {
		t.Errorf("LoadImage on an embedded cluster: %v, want one saying it has no image store", err)
	}
}
