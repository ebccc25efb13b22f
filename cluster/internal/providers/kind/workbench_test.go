package kind

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

// Cluster names carry a short id of the workbench, so two workbenches on
// one machine never share, adopt or delete each other's clusters.
func TestClusterNamesPerWorkbench(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	pa := newProvider(providers.Env{StateDir: a}, newFakeLib(), nil)
	pb := newProvider(providers.Env{StateDir: b}, newFakeLib(), nil)
	re := regexp.MustCompile(`^tether-[0-9a-f]{6}-hub$`)
	if !re.MatchString(pa.ClusterName("hub")) || !re.MatchString(pb.ClusterName("hub")) {
		t.Errorf("names %q, %q; want tether-<6 hex digits>-hub", pa.ClusterName("hub"), pb.ClusterName("hub"))
	}
	if pa.ClusterName("hub") == pb.ClusterName("hub") {
		t.Errorf("two workbenches both name their hub %q", pa.ClusterName("hub"))
	}
	// The same folder, spelled otherwise, is the same workbench.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{a + "/", link, filepath.Join(a, "..", filepath.Base(a))} {
		if got := newProvider(providers.Env{StateDir: dir}, newFakeLib(), nil).ClusterName("hub"); got != pa.ClusterName("hub") {
			t.Errorf("state folder %s names the hub %q, want %q", dir, got, pa.ClusterName("hub"))
		}
	}
	// The longest cluster name config allows still makes a valid host name.
	if n := len(pa.ClusterName(strings.Repeat("a", 35)) + controlPlaneSuffix); n > 63 {
		t.Errorf("node name of a 35-character cluster is %d characters, more than 63", n)
	}
}

// A cluster another workbench (or an older tether) named is never adopted:
// Ensure creates this workbench's own.
func TestEnsureAdoptsOnlyItsOwnNames(t *testing.T) {
	f := newFixture(t, "hub")
	other := newProvider(providers.Env{StateDir: t.TempDir()}, newFakeLib(), nil).ClusterName("hub")
	f.lib.clusters = []string{"tether-hub", other, "kind"}
	if _, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, &state.Cluster{Name: "hub"}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if len(f.lib.creates) != 1 || f.lib.creates[0].name != f.kindNm {
		t.Errorf("creates %+v, want %s created rather than another's adopted", f.lib.creates, f.kindNm)
	}
	if f.ready.count() != 0 {
		t.Errorf("asked another cluster's /readyz")
	}
}

// Down sweeps every cluster with this workbench's prefix, recorded or not,
// and nothing else; up keeps the ones it wants.
func TestSweep(t *testing.T) {
	f := newFixture(t, "hub")
	mine := []string{f.p.ClusterName("hub"), f.p.ClusterName("spoke-1"), f.p.ClusterName("half-made")}
	other := newProvider(providers.Env{StateDir: t.TempDir()}, newFakeLib(), nil).ClusterName("hub")
	foreign := []string{"tether-hub", other, "kind", "tether-spoke-1"}
	for _, keep := range [][]string{nil, {"hub", "spoke-1"}} {
		t.Run(fmt.Sprintf("keep %v", keep), func(t *testing.T) {
			f.lib.clusters = append(slices.Clone(mine), foreign...)
			f.lib.deletes = nil
			f.prog.steps = nil
			halfDir := f.p.dir("half-made")
			if err := os.MkdirAll(halfDir, 0o700); err != nil {
				t.Fatal(err)
			}
			swept, err := f.p.Sweep(context.Background(), keep)
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			var want []string
			for _, n := range []string{"hub", "spoke-1", "half-made"} {
				if !slices.Contains(keep, n) {
					want = append(want, n)
				}
			}
			if fmt.Sprint(swept) != fmt.Sprint(want) {
				t.Errorf("swept %q, want %q", swept, want)
			}
			left := f.lib.clusters
			for _, n := range foreign {
				if !slices.Contains(left, n) {
					t.Errorf("swept %s, which is not this workbench's", n)
				}
			}
			for _, n := range want {
				if slices.Contains(left, f.p.ClusterName(n)) {
					t.Errorf("%s left behind", f.p.ClusterName(n))
				}
			}
			if _, err := os.Stat(halfDir); !os.IsNotExist(err) {
				t.Errorf("folder of the swept cluster is still there (%v)", err)
			}
			if s := f.prog.step("delete kind cluster " + f.p.ClusterName("half-made")); s == nil || !s.done || s.err != nil {
				t.Errorf("steps %q, want the sweep of half-made shown", f.prog.titles())
			}
		})
	}
}

func TestSweepReportsFailures(t *testing.T) {
	f := newFixture(t, "hub")
	f.lib.clusters = []string{f.kindNm}
	f.lib.deleteErr = errors.New("docker rm: device busy")
	_, err := f.p.Sweep(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), f.kindNm) || !strings.Contains(err.Error(), "device busy") {
		t.Fatalf("Sweep error %v, want it to name the cluster and the reason", err)
	}
}

// A kubeconfig lock older than 2 minutes is left by a killed tether and
// would fail kind's write; a fresh one may be kind's own and stays.
func TestStaleKubeconfigLock(t *testing.T) {
	tests := []struct {
		name     string
		age      time.Duration
		wantLock bool
	}{
		{name: "stale", age: 5 * time.Minute, wantLock: false},
		{name: "fresh", age: 10 * time.Second, wantLock: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			lock := f.p.kindKubeconfig("hub") + ".lock"
			if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(lock, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			at := f.clock.Add(-tt.age)
			if err := os.Chtimes(lock, at, at); err != nil {
				t.Fatal(err)
			}
			var lockAtCreate atomic.Bool
			f.lib.onCreate = func(string, createRequest) {
				_, err := os.Stat(lock)
				lockAtCreate.Store(err == nil)
			}
			if _, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, nil); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if lockAtCreate.Load() != tt.wantLock {
				t.Errorf("lock there when kind created: %v, want %v", lockAtCreate.Load(), tt.wantLock)
			}
		})
	}
}

// readyz goes through client-go's REST client with the admin kubeconfig:
// TLS against the cluster's CA, credentials, the /readyz path.
func TestReadyzThroughKubeconfig(t *testing.T) {
	var ready atomic.Bool
	var paths, tokens atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path)
		tokens.Store(r.Header.Get("Authorization"))
		if !ready.Load() {
			http.Error(w, "[-]etcd failed: not ready", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    server: %s
    certificate-authority-data: %s
  name: c
contexts:
- context: {cluster: c, user: u}
  name: c
current-context: c
users:
- name: u
  user: {token: secret}
`, srv.URL, base64.StdEncoding.EncodeToString(ca))

	if err := readyz(context.Background(), []byte(kubeconfig)); err == nil {
		t.Fatal("readyz = nil while the API server is not ready")
	}
	ready.Store(true)
	if err := readyz(context.Background(), []byte(kubeconfig)); err != nil {
		t.Fatalf("readyz: %v", err)
	}
	if p := paths.Load(); p != "/readyz" {
		t.Errorf("asked %v, want /readyz", p)
	}
	if tok := tokens.Load(); tok != "Bearer secret" {
		t.Errorf("Authorization %v, want the kubeconfig's token", tok)
	}
}

// doctor says which node image up would use or how it would get one, and
// warns about inotify limits and engine memory, with what to do.
func TestDoctor(t *testing.T) {
	const gibi = 1 << 30
	tests := []struct {
		name       string
		goos       string
		tetherHere bool
		kindHere   bool
		canBuild   error
		watches    string
		instances  string
		mem        fakeAnswer
		wantFacts  []string
		wantWarns  []string
	}{
		{
			name: "all good, kind's image here", goos: "linux", kindHere: true, watches: "524288\n", instances: "512\n",
			mem:       fakeAnswer{stdout: fmt.Sprintf("%d\n", 16*gibi)},
			wantFacts: []string{"node image kindest/node:v1.37", "is in Docker: up uses it", "16.0 GiB"},
		},
		{
			name: "tether's image here", goos: "linux", tetherHere: true, watches: "1048576", instances: "8192",
			mem:       fakeAnswer{stdout: fmt.Sprintf("%d", 8*gibi)},
			wantFacts: []string{"node image " + fakeTetherImage + " (built offline) is in Docker: up uses it"},
		},
		{
			name: "no image, can build", goos: "linux", watches: "524288", instances: "512", mem: fakeAnswer{stdout: fmt.Sprintf("%d", 8*gibi)},
			wantFacts: []string{"up pulls kindest/node:v1.37", "if that fails within 60 s, builds " + fakeTetherImage + " offline"},
		},
		{
			name: "no image, cannot build", goos: "darwin", canBuild: errors.New("building a node image needs Linux"), mem: fakeAnswer{stdout: fmt.Sprintf("%d", 8*gibi)},
			wantFacts: []string{"up pulls kindest/node:v1.37"},
			wantWarns: []string{"cannot build a node image offline (building a node image needs Linux)", "--node-image"},
		},
		{
			name: "low inotify and memory", goos: "linux", kindHere: true, watches: "8192", instances: "128",
			mem:       fakeAnswer{stdout: fmt.Sprintf("%d", 2*gibi)},
			wantWarns: []string{"fs.inotify.max_user_watches is 8192", "fs.inotify.max_user_instances is 128", "sudo sysctl -w fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512", "2.0 GiB of memory", "4.0 GiB"},
		},
		{
			name: "docker info fails", goos: "linux", kindHere: true, watches: "524288", instances: "512",
			mem:       fakeAnswer{err: errors.New("exit status 1"), stderr: "permission denied\n"},
			wantWarns: []string{"could not read the Docker engine's memory (docker info: permission denied)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			f.p.goos = tt.goos
			f.p.readFile = func(path string) ([]byte, error) {
				switch path {
				case "/proc/sys/fs/inotify/max_user_watches":
					return []byte(tt.watches), nil
				case "/proc/sys/fs/inotify/max_user_instances":
					return []byte(tt.instances), nil
				}
				return nil, os.ErrNotExist
			}
			delete(f.run.answers, "docker image inspect --format {{.Id}} "+NodeImage)
			if tt.kindHere {
				f.run.answers["docker image inspect --format {{.Id}} "+NodeImage] = fakeAnswer{stdout: "sha256:1"}
			}
			f.run.answers["docker info --format {{.MemTotal}}"] = tt.mem
			f.images.present, f.images.canBuild = tt.tetherHere, tt.canBuild

			facts, warns := f.p.Doctor(context.Background())
			all := strings.Join(facts, "\n")
			for _, w := range tt.wantFacts {
				if !strings.Contains(all, w) {
					t.Errorf("facts %q lack %q", facts, w)
				}
			}
			allw := strings.Join(warns, "\n")
			for _, w := range tt.wantWarns {
				if !strings.Contains(allw, w) {
					t.Errorf("warnings %q lack %q", warns, w)
				}
			}
			if tt.wantWarns == nil && len(warns) > 0 {
				t.Errorf("warnings %q, want none", warns)
			}
			if pulls := f.run.callsWith("docker pull"); len(pulls) > 0 || f.images.ensures.Load() > 0 {
				t.Errorf("doctor pulled %q or built (%d)", pulls, f.images.ensures.Load())
			}
		})
	}
}
