package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

// fakeKind stands in for the kind provider: clusters are answered by one
// fake API server, and what the workbench asks is recorded.
type fakeKind struct {
	api string // URL of the fake API server
	dir string

	mu       sync.Mutex
	envs     []providers.Env
	ensured  []string
	deleted  []string
	sweeps   [][]string
	leftover []string // clusters the record lacks, found by Sweep
}

var _ providers.Sweeper = (*fakeKind)(nil)

func (k *fakeKind) Name() string                    { return ProviderKind }
func (k *fakeKind) Preflight(context.Context) error { return nil }
func (k *fakeKind) Problems(context.Context, state.Cluster) []string {
	return nil
}
func (k *fakeKind) Traits() providers.Traits { return providers.Traits{RunsContainers: true} }

func (k *fakeKind) Ensure(_ context.Context, spec providers.Spec, _ *state.Cluster) (*state.Cluster, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ensured = append(k.ensured, spec.Name)
	kc := filepath.Join(k.dir, spec.Name+".kubeconfig")
	data := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: %q}\n  name: c\ncontexts:\n- context: {cluster: c, user: u}\n  name: c\ncurrent-context: c\nusers:\n- name: u\n  user: {token: t}\n", k.api)
	if err := os.WriteFile(kc, []byte(data), 0o600); err != nil {
		return nil, err
	}
	return &state.Cluster{Name: spec.Name, Role: spec.Role, Provider: ProviderKind, Endpoint: k.api, Kubeconfig: kc}, nil
}

func (k *fakeKind) Delete(_ context.Context, c state.Cluster) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.deleted = append(k.deleted, c.Name)
	return nil
}

func (k *fakeKind) Sweep(_ context.Context, keep []string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweeps = append(k.sweeps, slices.Clone(keep))
	var swept []string
	for _, n := range k.leftover {
		if !slices.Contains(keep, n) {
			swept = append(swept, n)
		}
	}
	k.leftover = slices.DeleteFunc(k.leftover, func(n string) bool { return slices.Contains(swept, n) })
	return swept, nil
}

// kindWorkbench is a workbench whose kind provider is fakeKind, over an
// API server that lets tether create its namespace.
func kindWorkbench(t *testing.T, engineErr error) (*Workbench, *fakeKind) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+SystemNamespace+`"}}`)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	wb, _ := testWorkbench(t, engineErr)
	k := &fakeKind{api: srv.URL, dir: t.TempDir()}
	wb.providerFor = func(name string, env providers.Env) (providers.Provider, error) {
		if name != ProviderKind {
			return newProvider(name, env)
		}
		k.mu.Lock()
		k.envs = append(k.envs, env)
		k.mu.Unlock()
		return k, nil
	}
	return wb, k
}

// --node-image reaches the kind provider, and the record keeps it so that
// spokes added later boot the same image.
func TestUpPassesNodeImageToKind(t *testing.T) {
	wb, k := kindWorkbench(t, nil)
	const image = "registry.example/kind-node:v1.37.0"
	cfg := DefaultConfig()
	cfg.Provider = ProviderKind
	cfg.Kind.NodeImage = image
	if _, err := wb.Up(context.Background(), cfg); err != nil {
		t.Fatalf("Up: %v", err)
	}
	var got []string
	for _, e := range k.envs {
		got = append(got, e.NodeImage)
	}
	if len(got) == 0 || got[len(got)-1] != image {
		t.Errorf("the kind provider was given node images %q, want %q", got, image)
	}
	rec, err := wb.RecordedConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind.NodeImage != image {
		t.Errorf("recorded node image %q, want %q", rec.Kind.NodeImage, image)
	}
	k.envs = nil
	if _, err := wb.AddSpoke(context.Background(), ClusterConfig{Name: "spoke-3"}); err != nil {
		t.Fatalf("AddSpoke: %v", err)
	}
	if len(k.envs) == 0 || k.envs[len(k.envs)-1].NodeImage != image {
		t.Errorf("an added spoke's provider got node image %+v, want %q", k.envs, image)
	}
}

// Up removes clusters of this workbench that no record lists and no
// configuration wants; Down removes every one, recorded or not.
func TestSweepOnUpAndDown(t *testing.T) {
	wb, k := kindWorkbench(t, nil)
	k.leftover = []string{"spoke-9", "hub"}
	cfg := DefaultConfig()
	cfg.Provider = ProviderKind
	if _, err := wb.Up(context.Background(), cfg); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(k.sweeps) != 1 || strings.Join(k.sweeps[0], ",") != "hub,spoke-1,spoke-2" {
		t.Errorf("up swept keeping %q, want the configured clusters kept", k.sweeps)
	}
	if !slices.Equal(k.leftover, []string{"hub"}) {
		t.Errorf("left over after up: %q, want only the wanted hub (Ensure adopts or repairs it)", k.leftover)
	}

	k.leftover = append(k.leftover, "half-made")
	if err := wb.Down(context.Background()); err != nil {
		t.Fatalf("Down: %v", err)
	}
	slices.Sort(k.deleted)
	if strings.Join(k.deleted, ",") != "hub,spoke-1,spoke-2" {
		t.Errorf("down deleted %q, want every recorded cluster", k.deleted)
	}
	if last := k.sweeps[len(k.sweeps)-1]; len(k.sweeps) != 2 || last != nil {
		t.Errorf("down swept %q, want one sweep keeping nothing", k.sweeps)
	}
	if len(k.leftover) != 0 {
		t.Errorf("left over after down: %q", k.leftover)
	}
}

// An up killed mid-create records the provider but no cluster; down still
// finds what it left, and so it does when the state file is gone, as long
// as an engine answers.
func TestDownSweepsWithoutRecord(t *testing.T) {
	tests := []struct {
		name      string
		record    *state.File
		engineErr error
		wantSweep bool
	}{
		{name: "provider recorded, no clusters", record: &state.File{Provider: ProviderKind}, wantSweep: true},
		{name: "no state file", wantSweep: true},
		{name: "no state file, no engine", engineErr: errNoEngine},
		{name: "kind recorded, no engine", record: &state.File{Provider: ProviderKind}, engineErr: errNoEngine},
		{name: "embedded workbench", record: &state.File{Provider: ProviderEmbedded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wb, k := kindWorkbench(t, tt.engineErr)
			k.leftover = []string{"hub"}
			if tt.record != nil {
				if err := wb.store.Save(tt.record); err != nil {
					t.Fatal(err)
				}
			}
			if err := wb.Down(context.Background()); err != nil {
				t.Fatalf("Down: %v", err)
			}
			if swept := len(k.sweeps) > 0; swept != tt.wantSweep {
				t.Errorf("swept: %v, want %v", swept, tt.wantSweep)
			}
			if _, err := os.Stat(filepath.Join(wb.StateDir(), "state.json")); !os.IsNotExist(err) {
				t.Errorf("state.json left: %v", err)
			}
		})
	}
}

func TestPrepareKindNeedsEngine(t *testing.T) {
	wb, k := kindWorkbench(t, errNoEngine)
	_, err := wb.PrepareKind(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "the kind provider needs a Docker engine") || !errors.Is(err, errNoEngine) {
		t.Fatalf("PrepareKind without an engine = %v, want a refusal naming Docker", err)
	}
	if len(k.envs) != 0 {
		t.Error("made a kind provider without an engine")
	}
	if _, err := wb.PrepareKind(context.Background(), "Not An Image"); err == nil || !strings.Contains(err.Error(), "not an image reference") {
		t.Errorf("PrepareKind(bad reference) = %v, want it refused", err)
	}
}

// doctor's kind line says what up would do for a node image, and carries
// the provider's warnings, without making kind unusable.
func TestDoctorKindFacts(t *testing.T) {
	wb, _ := testWorkbench(t, nil)
	wb.kindDoctor = func(context.Context) ([]string, []string) {
		return []string{"no node image in Docker yet: up pulls kindest/node:v1.37.0"}, []string{"fs.inotify.max_user_watches is 8192 (kind needs 524288)"}
	}
	for _, c := range wb.Doctor(context.Background()) {
		if c.Provider != ProviderKind {
			continue
		}
		if !c.OK || !strings.Contains(c.Detail, "a Docker engine answers") || !strings.Contains(c.Detail, "up pulls kindest/node") {
			t.Errorf("kind = %+v, want OK with the node image plan in the detail", c)
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "max_user_watches") {
			t.Errorf("kind warnings %q, want the provider's", c.Warnings)
		}
	}
}
