package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tether-dev/tether/cluster/internal/state"
)

// engine is a fake Docker engine check that counts its calls.
type engine struct {
	err   error
	calls atomic.Int32
}

func (e *engine) check(context.Context) error {
	e.calls.Add(1)
	return e.err
}

var errNoEngine = errors.New("no Docker engine answers: start Docker, or use --provider embedded")

// testWorkbench returns a workbench whose folders and kubeconfig all live in
// temporary folders.
func testWorkbench(t *testing.T, engineErr error) (*Workbench, *engine) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(dir, "kube", "config"))
	e := &engine{err: engineErr}
	wb, err := New(Options{
		StateDir:    filepath.Join(dir, "state"),
		CacheDir:    filepath.Join(dir, "cache"),
		Kubeconfig:  filepath.Join(dir, "kube", "config"),
		EngineCheck: e.check,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Unit tests do not ask the machine's Docker engine about images.
	wb.kindDoctor = func(context.Context) ([]string, []string) { return nil, nil }
	return wb, e
}

func TestResolveProvider(t *testing.T) {
	tests := []struct {
		name      string
		requested string
		engineErr error
		want      string
		wantErr   []string
	}{
		{name: "auto with engine", requested: "", want: ProviderKind},
		{name: "auto without engine", requested: "", engineErr: errNoEngine, want: ProviderEmbedded},
		{name: "kind with engine", requested: ProviderKind, want: ProviderKind},
		{name: "kind without engine", requested: ProviderKind, engineErr: errNoEngine, wantErr: []string{"the kind provider needs a Docker engine", "no Docker engine answers"}},
		{name: "embedded needs no engine", requested: ProviderEmbedded, engineErr: errNoEngine, want: ProviderEmbedded},
		{name: "existing needs no engine", requested: ProviderExisting, engineErr: errNoEngine, want: ProviderExisting},
		{name: "unknown", requested: "podman", wantErr: []string{`unknown provider "podman"`, "embedded", "kind", "existing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wb, _ := testWorkbench(t, tt.engineErr)
			got, err := wb.ResolveProvider(context.Background(), tt.requested)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ResolveProvider(%q) = %q, want an error", tt.requested, got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if tt.engineErr != nil && !errors.Is(err, tt.engineErr) {
					t.Errorf("error %q does not wrap the engine's reason", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveProvider(%q) = %q, %v; want %q", tt.requested, got, err, tt.want)
			}
		})
	}
}

func TestResolveProviderAsksEngineOnlyWhenNeeded(t *testing.T) {
	wb, e := testWorkbench(t, errNoEngine)
	for _, p := range []string{ProviderEmbedded, ProviderExisting} {
		if _, err := wb.ResolveProvider(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.calls.Load(); n != 0 {
		t.Errorf("engine asked %d times for explicit non-kind providers, want 0", n)
	}
}

// listDir returns the names in dir, or nil when it does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestUpInvalidConfig(t *testing.T) {
	wb, e := testWorkbench(t, nil)
	cfg := Config{Provider: ProviderEmbedded, Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: "Bad_Name"}}}
	wantErr := cfg.Validate()
	out, err := wb.Up(context.Background(), cfg)
	if err == nil {
		t.Fatalf("Up() = %v, want the validation error", out)
	}
	if err.Error() != wantErr.Error() {
		t.Errorf("Up() error = %q, want the validation error %q", err, wantErr)
	}
	if names := listDir(t, wb.StateDir()); names != nil {
		t.Errorf("an invalid config left %v in the state folder", names)
	}
	if _, err := os.Stat(wb.KubeconfigPath()); !os.IsNotExist(err) {
		t.Errorf("an invalid config touched the kubeconfig: %v", err)
	}
	if e.calls.Load() != 0 {
		t.Error("an invalid config asked for the Docker engine")
	}
}

func TestUpPinnedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	wb, _ := testWorkbench(t, errNoEngine)
	cfg := Config{
		Provider: ProviderEmbedded,
		Hub:      ClusterConfig{Name: "hub"},
		Spokes:   []ClusterConfig{{Name: "spoke-1"}, {Name: "spoke-2", APIServerPort: port}},
	}
	_, err = wb.Up(context.Background(), cfg)
	if err == nil {
		t.Fatal("Up() = nil, want the busy port reported")
	}
	for _, w := range []string{strconv.Itoa(port), `"spoke-2"`, "already in use"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if _, err := os.Stat(filepath.Join(wb.StateDir(), "state.json")); !os.IsNotExist(err) {
		t.Errorf("state.json exists after a refused up: %v", err)
	}
	if _, err := os.Stat(filepath.Join(wb.StateDir(), "clusters")); !os.IsNotExist(err) {
		t.Errorf("cluster folders exist after a refused up: %v", err)
	}
	// Only the lock file may be there: no CA, no data.
	for _, n := range listDir(t, wb.StateDir()) {
		if n != "lock" {
			t.Errorf("state folder holds %s after a refused up", n)
		}
	}
	// No compile started.
	if names := listDir(t, wb.opts.CacheDir); names != nil {
		t.Errorf("cache folder holds %v: a build started before the port check", names)
	}
	if _, err := os.Stat(wb.KubeconfigPath()); !os.IsNotExist(err) {
		t.Errorf("a refused up touched the kubeconfig: %v", err)
	}
}

func TestUpKindWithoutEngine(t *testing.T) {
	wb, _ := testWorkbench(t, errNoEngine)
	cfg := DefaultConfig()
	cfg.Provider = ProviderKind
	_, err := wb.Up(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "Docker") || !strings.Contains(err.Error(), "--provider embedded") {
		t.Fatalf("Up(kind) without an engine = %v, want an error about Docker and --provider embedded", err)
	}
	if _, err := os.Stat(filepath.Join(wb.StateDir(), "state.json")); !os.IsNotExist(err) {
		t.Errorf("state.json exists after a refused up: %v", err)
	}
}

func TestUpRefusesProviderSwitch(t *testing.T) {
	wb, _ := testWorkbench(t, errNoEngine)
	st := &state.File{Provider: ProviderKind, Clusters: []state.Cluster{{Name: "hub", Role: "hub", Provider: ProviderKind}}}
	if err := (state.Store{Dir: wb.StateDir()}).Save(st); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(wb.StateDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Provider = ProviderEmbedded
	_, err = wb.Up(context.Background(), cfg)
	var sw *ProviderSwitchError
	if err == nil || !strings.Contains(err.Error(), "kind provider") || !errors.As(err, &sw) || sw.Recorded != ProviderKind || sw.Requested != ProviderEmbedded {
		t.Fatalf("Up() = %v, want a ProviderSwitchError naming the kind provider", err)
	}
	after, _ := os.ReadFile(filepath.Join(wb.StateDir(), "state.json"))
	if string(before) != string(after) {
		t.Error("a refused up rewrote state.json")
	}
}

func TestStatusEmpty(t *testing.T) {
	wb, _ := testWorkbench(t, errNoEngine)
	provider, clusters, err := wb.Status(context.Background())
	if err != nil {
		t.Fatalf("Status() error = %v", err)
	}
	if provider != "" || len(clusters) != 0 {
		t.Errorf("Status() = %q, %v; want no provider and no clusters", provider, clusters)
	}
	if names := listDir(t, wb.StateDir()); names != nil {
		t.Errorf("Status changed the state folder: %v", names)
	}
	got, err := wb.Clusters()
	if err != nil || len(got) != 0 {
		t.Errorf("Clusters() = %v, %v; want none", got, err)
	}
	if _, err := wb.RESTConfig("hub"); err == nil || !strings.Contains(err.Error(), `"hub"`) {
		t.Errorf("RESTConfig(hub) on an empty workbench = %v, want an error naming hub", err)
	}
}

func TestDownEmpty(t *testing.T) {
	wb, _ := testWorkbench(t, errNoEngine)
	if err := wb.Down(context.Background()); err != nil {
		t.Fatalf("Down() on an empty state folder: %v", err)
	}
	// Twice is fine too.
	if err := wb.Down(context.Background()); err != nil {
		t.Fatalf("second Down(): %v", err)
	}
	if _, err := os.Stat(filepath.Join(wb.StateDir(), "state.json")); !os.IsNotExist(err) {
		t.Errorf("Down left state.json: %v", err)
	}
	if _, err := os.Stat(wb.KubeconfigPath()); !os.IsNotExist(err) {
		t.Errorf("Down created the kubeconfig: %v", err)
	}
}

func TestDownKeepsUserContexts(t *testing.T) {
	wb, _ := testWorkbench(t, errNoEngine)
	user := userKubeconfig(t)
	wb.opts.Kubeconfig = user
	if err := wb.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, user)
	assertOtherUntouched(t, cfg)
	if cfg.CurrentContext != "other" {
		t.Errorf("current-context = %q, want other", cfg.CurrentContext)
	}
}

func TestDoctor(t *testing.T) {
	tests := []struct {
		name        string
		engineErr   error
		wantKindOK  bool
		wantDefault string
	}{
		{name: "no engine", engineErr: errNoEngine, wantKindOK: false, wantDefault: ProviderEmbedded},
		{name: "engine", engineErr: nil, wantKindOK: true, wantDefault: ProviderKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wb, _ := testWorkbench(t, tt.engineErr)
			checks := wb.Doctor(context.Background())
			var order []string
			byName := map[string]Check{}
			for _, c := range checks {
				order = append(order, c.Provider)
				byName[c.Provider] = c
			}
			if got, want := strings.Join(order, ","), strings.Join(ProviderNames(), ","); got != want {
				t.Fatalf("Doctor() providers = %s, want %s", got, want)
			}
			kind := byName[ProviderKind]
			if kind.OK != tt.wantKindOK {
				t.Errorf("kind OK = %v, want %v (%s)", kind.OK, tt.wantKindOK, kind.Detail)
			}
			if tt.engineErr != nil && kind.Detail != tt.engineErr.Error() {
				t.Errorf("kind detail = %q, want the engine's reason %q", kind.Detail, tt.engineErr)
			}
			defaults := 0
			for _, c := range checks {
				if c.Default {
					defaults++
					if c.Provider != tt.wantDefault {
						t.Errorf("default = %s, want %s", c.Provider, tt.wantDefault)
					}
				}
			}
			if defaults != 1 {
				t.Errorf("%d providers marked default, want 1", defaults)
			}
			// The go command runs these tests, so the embedded provider can
			// build its binaries; an empty cache means the first up compiles.
			emb := byName[ProviderEmbedded]
			if !emb.OK || !strings.Contains(emb.Detail, "compiles") {
				t.Errorf("embedded = %+v, want OK and a note that the first up compiles", emb)
			}
			ex := byName[ProviderExisting]
			if ex.OK || ex.Detail == "" {
				t.Errorf("existing = %+v, want not OK with a reason (the kubeconfig does not exist)", ex)
			}
			if names := listDir(t, wb.opts.CacheDir); names != nil {
				t.Errorf("Doctor wrote to the cache: %v", names)
			}
		})
	}
}

func TestDoctorStateNotWritable(t *testing.T) {
	wb, _ := testWorkbench(t, errNoEngine)
	// A file where the state folder should be: no process can write there.
	if err := os.WriteFile(wb.StateDir(), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range wb.Doctor(context.Background()) {
		if c.OK || !strings.Contains(c.Detail, "not writable") || !strings.Contains(c.Detail, "TETHER_STATE_DIR") {
			t.Errorf("%s = %+v, want not OK because the state folder is not writable", c.Provider, c)
		}
	}
}

func TestDefaultDirs(t *testing.T) {
	t.Setenv("TETHER_STATE_DIR", "/x/state")
	t.Setenv("TETHER_CACHE_DIR", "/x/cache")
	if d, err := DefaultStateDir(); err != nil || d != "/x/state" {
		t.Errorf("DefaultStateDir() = %s, %v", d, err)
	}
	if d, err := DefaultCacheDir(); err != nil || d != "/x/cache" {
		t.Errorf("DefaultCacheDir() = %s, %v", d, err)
	}
	t.Setenv("TETHER_STATE_DIR", "")
	t.Setenv("XDG_STATE_HOME", "/xdg")
	if d, err := DefaultStateDir(); err != nil || d != filepath.Join("/xdg", "tether") {
		t.Errorf("DefaultStateDir() with XDG_STATE_HOME = %s, %v", d, err)
	}
}
