package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/state"
)

const hostKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://127.0.0.1:%d
  name: kind-%s
contexts:
- context:
    cluster: kind-%s
    user: kind-%s
  name: kind-%s
current-context: kind-%s
users:
- name: kind-%s
  user:
    token: secret
`

func kubeconfigFor(name string, port int) string {
	return fmt.Sprintf(hostKubeconfig, port, name, name, name, name, name, name)
}

type fixture struct {
	p      *Provider
	lib    *fakeLib
	run    *fakeRunner
	prog   *fakeProgress
	images *fakeImages
	ready  *fakeReadyz
	state  string
	node   *fakeNode
	clock  time.Time
	kindNm string
}

// fakeReadyz fails with errs in turn, then answers ok.
type fakeReadyz struct {
	mu    sync.Mutex
	errs  []error
	never error // when set, every call fails with it
	calls int
}

func (r *fakeReadyz) check(ctx context.Context, kubeconfig []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.never != nil {
		return r.never
	}
	if len(r.errs) > 0 {
		err := r.errs[0]
		r.errs = r.errs[1:]
		return err
	}
	return nil
}

func (r *fakeReadyz) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// newFixture makes a provider over a fake kind in which creating the
// cluster "tether-<id>-<name>" gives a control-plane node at 172.18.0.2,
// and in which Docker has kind's default node image.
func newFixture(t *testing.T, name string) *fixture {
	t.Helper()
	dir := t.TempDir()
	lib := newFakeLib()
	run := &fakeRunner{answers: map[string]fakeAnswer{
		"docker image inspect --format {{.Id}} " + NodeImage: {stdout: "sha256:0123\n"},
	}}
	prog := &fakeProgress{}
	p := newProvider(providers.Env{StateDir: dir, CacheDir: filepath.Join(dir, "cache"), Progress: prog}, lib, run.run)
	images := &fakeImages{}
	p.images = images
	ready := &fakeReadyz{}
	p.readyz = ready.check
	p.pollEvery = time.Millisecond
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }

	kindName := p.ClusterName(name)
	node := &fakeNode{name: kindName + "-control-plane", role: "control-plane", ipv4: "172.18.0.2"}
	lib.nodes[kindName] = []nodes.Node{node}
	lib.kubeconfig[kindName+"/false"] = kubeconfigFor(kindName, 6444)
	lib.kubeconfig[kindName+"/true"] = strings.ReplaceAll(kubeconfigFor(kindName, 6443), "127.0.0.1", node.name)
	run.answers["docker inspect --format {{.State.Running}} "+node.name] = fakeAnswer{stdout: "true\n"}
	return &fixture{p: p, lib: lib, run: run, prog: prog, images: images, ready: ready, state: dir, node: node, clock: clock, kindNm: kindName}
}

func TestName(t *testing.T) {
	if got := newFixture(t, "hub").p.Name(); got != "kind" {
		t.Fatalf("Name() = %q, want kind", got)
	}
}

func TestEnsureCreates(t *testing.T) {
	tests := []struct {
		name     string
		port     int
		wantPort int32
	}{
		{name: "pinned port", port: 16443, wantPort: 16443},
		{name: "free port", port: 0, wantPort: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			got, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub, APIServerPort: tt.port}, nil)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if len(f.lib.creates) != 1 {
				t.Fatalf("Create called %d times, want 1", len(f.lib.creates))
			}
			c := f.lib.creates[0]
			dir := filepath.Join(f.state, "clusters", "hub")
			if c.name != f.kindNm || !regexp.MustCompile(`^tether-[0-9a-f]{6}-hub$`).MatchString(c.name) {
				t.Errorf("created %q, want tether-<6 hex digits>-hub", c.name)
			}
			checkConfig(t, c.req.Config, f.kindNm, tt.wantPort, NodeImage)
			if c.req.Image != NodeImage || !strings.HasPrefix(NodeImage, "kindest/node:v1.37.") {
				t.Errorf("image %q, want kind's default v1.37 image %q", c.req.Image, NodeImage)
			}
			if c.req.Wait != 3*time.Minute {
				t.Errorf("wait %v, want 3m", c.req.Wait)
			}
			if want := filepath.Join(dir, "kind.kubeconfig"); c.req.KubeconfigPath != want {
				t.Errorf("kind kubeconfig %q, want private %q", c.req.KubeconfigPath, want)
			}
			want := &state.Cluster{
				Name:             "hub",
				Role:             providers.RoleHub,
				Provider:         "kind",
				Endpoint:         "https://127.0.0.1:6444",
				InternalEndpoint: "https://" + f.kindNm + "-control-plane:6443",
				Kubeconfig:       filepath.Join(dir, "admin.kubeconfig"),
				Dir:              dir,
				Created:          f.clock,
			}
			checkCluster(t, got, want)
			checkAdminKubeconfig(t, want.Kubeconfig, f.lib.kubeconfig[f.kindNm+"/false"])
			if len(f.prog.steps) != 1 || f.prog.steps[0].title != "create kind cluster "+f.kindNm || !f.prog.steps[0].done || f.prog.steps[0].err != nil {
				t.Errorf("progress steps = %q, want one finished step 'create kind cluster %s'", f.prog.titles(), f.kindNm)
			}
			if pulls := f.run.callsWith("docker pull"); len(pulls) != 0 {
				t.Errorf("pulled %q although Docker has kind's node image", pulls)
			}
		})
	}
}

func checkConfig(t *testing.T, cfg *v1alpha4.Cluster, name string, port int32, image string) {
	t.Helper()
	if cfg == nil {
		t.Fatal("no kind config passed")
	}
	if cfg.Name != name {
		t.Errorf("config name %q, want %q", cfg.Name, name)
	}
	if cfg.APIVersion != "kind.x-k8s.io/v1alpha4" || cfg.Kind != "Cluster" {
		t.Errorf("config type %+v", cfg.TypeMeta)
	}
	if len(cfg.Nodes) != 1 || cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole || cfg.Nodes[0].Image != image {
		t.Errorf("config nodes %+v, want one control-plane node on %s", cfg.Nodes, image)
	}
	if !slices.Contains(cfg.KubeadmConfigPatches, kubeletNoFailCgroupV1) {
		t.Errorf("kubeadm patches %q lack failCgroupV1: false", cfg.KubeadmConfigPatches)
	}
	if got, want := cfg.Networking.DisableDefaultCNI, strings.HasPrefix(image, "tether.local/kind-node:"); got != want {
		t.Errorf("disableDefaultCNI = %v on %s, want %v (only tether's image brings its own CNI)", got, image, want)
	}
	if cfg.Networking.APIServerAddress != "127.0.0.1" {
		t.Errorf("API server address %q, want 127.0.0.1", cfg.Networking.APIServerAddress)
	}
	if cfg.Networking.APIServerPort != port {
		t.Errorf("API server port %d, want %d", cfg.Networking.APIServerPort, port)
	}
}

func checkCluster(t *testing.T, got, want *state.Cluster) {
	t.Helper()
	if got == nil {
		t.Fatal("Ensure returned no cluster")
	}
	g, w := fmt.Sprintf("%+v", *got), fmt.Sprintf("%+v", *want)
	if g != w {
		t.Errorf("cluster\n got %s\nwant %s", g, w)
	}
}

func checkAdminKubeconfig(t *testing.T, path, want string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin kubeconfig mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("admin kubeconfig = %q, want kind's host kubeconfig", b)
	}
}

func TestEnsureReattaches(t *testing.T) {
	f := newFixture(t, "spoke1")
	f.lib.clusters = []string{f.kindNm, "someone-elses"}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := &state.Cluster{Name: "spoke1", Role: providers.RoleSpoke, Provider: "kind", Created: created}

	got, err := f.p.Ensure(context.Background(), providers.Spec{Name: "spoke1", Role: providers.RoleSpoke}, prev)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if len(f.lib.creates) != 0 {
		t.Fatalf("Create called %d times on an existing cluster, want 0", len(f.lib.creates))
	}
	dir := filepath.Join(f.state, "clusters", "spoke1")
	checkCluster(t, got, &state.Cluster{
		Name:             "spoke1",
		Role:             providers.RoleSpoke,
		Provider:         "kind",
		Endpoint:         "https://127.0.0.1:6444",
		InternalEndpoint: "https://" + f.kindNm + "-control-plane:6443",
		Kubeconfig:       filepath.Join(dir, "admin.kubeconfig"),
		Dir:              dir,
		Created:          created,
	})
	for _, c := range f.run.calls {
		if strings.HasPrefix(c, "docker start") || strings.HasPrefix(c, "docker pull") {
			t.Errorf("reattaching ran %q", c)
		}
	}
	if f.ready.count() != 1 {
		t.Errorf("/readyz asked %d times, want once", f.ready.count())
	}
	if titles := f.prog.titles(); len(titles) != 0 {
		t.Errorf("reattaching to a ready cluster showed steps %q, want none", titles)
	}
}

// After `docker start`, Ensure waits for /readyz, showing a step that
// updates, instead of handing back a cluster whose API does not answer yet.
func TestEnsureStartsStoppedNode(t *testing.T) {
	f := newFixture(t, "hub")
	f.lib.clusters = []string{f.kindNm}
	cp := f.kindNm + "-control-plane"
	f.run.answers["docker inspect --format {{.State.Running}} "+cp] = fakeAnswer{stdout: "false\n"}
	f.run.answers["docker start "+cp] = fakeAnswer{stdout: cp + "\n"}
	f.ready.errs = []error{errors.New("connection refused"), errors.New("etcd not ready")}

	if _, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, &state.Cluster{Name: "hub"}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if len(f.run.callsWith("docker start "+cp)) != 1 {
		t.Errorf("stopped node not started; calls: %q", f.run.calls)
	}
	if len(f.lib.creates) != 0 {
		t.Errorf("Create called on an existing cluster")
	}
	if n := f.ready.count(); n != 3 {
		t.Errorf("/readyz asked %d times, want 3 (twice not ready, then ready)", n)
	}
	s := f.prog.step("wait for the API server of kind cluster " + f.kindNm)
	if s == nil || !s.done || s.err != nil {
		t.Fatalf("steps %q, want a finished 'wait for the API server' step", f.prog.titles())
	}
	if len(s.updates) != 2 || !strings.Contains(s.updates[0], "connection refused") || !strings.Contains(s.updates[1], "etcd not ready") {
		t.Errorf("step updates %q, want one per failed /readyz saying why", s.updates)
	}
}

// A recorded cluster whose API server never answers is reported, not
// deleted: an earlier up finished it, so it may hold the user's work.
func TestEnsureRecordedClusterNeverReady(t *testing.T) {
	f := newFixture(t, "hub")
	f.lib.clusters = []string{f.kindNm}
	f.p.reattachWait = 30 * time.Millisecond
	f.ready.never = errors.New("connection refused")

	_, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, &state.Cluster{Name: "hub"})
	if err == nil {
		t.Fatal("Ensure succeeded although /readyz never answered")
	}
	var re *RepairError
	if !errors.As(err, &re) || !re.Down || !re.Up {
		t.Errorf("error %v is not a RepairError to take down and bring up", err)
	}
	for _, want := range []string{f.kindNm, "/readyz", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(f.lib.deletes) != 0 || len(f.lib.creates) != 0 {
		t.Errorf("deletes %q, creates %d: a recorded cluster was recreated unasked", f.lib.deletes, len(f.lib.creates))
	}
}

// A cluster this workbench's name but no record: an up interrupted
// mid-create left it. Up deletes it, says so, and creates it again.
func TestEnsureRepairsUnfinishedCluster(t *testing.T) {
	tests := []struct {
		name   string
		set    func(f *fixture)
		reason string
	}{
		{
			name:   "no kubeconfig yet",
			set:    func(f *fixture) { f.lib.unfinished[f.kindNm] = true },
			reason: "read kubeconfig",
		},
		{
			name: "API server never answers",
			set: func(f *fixture) {
				f.p.reattachWait = 30 * time.Millisecond
				f.ready.errs = slices.Repeat([]error{errors.New("connection refused")}, 1000)
				// Creating it afresh makes it answer.
				f.lib.onCreate = func(string, createRequest) {
					f.ready.mu.Lock()
					f.ready.errs = nil
					f.ready.mu.Unlock()
				}
			},
			reason: "did not answer /readyz",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			f.lib.clusters = []string{f.kindNm}
			tt.set(f)

			got, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, nil)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			wantDelete := [2]string{f.kindNm, filepath.Join(f.state, "clusters", "hub", "kind.kubeconfig")}
			if len(f.lib.deletes) != 1 || f.lib.deletes[0] != wantDelete {
				t.Errorf("deletes %q, want %q", f.lib.deletes, wantDelete)
			}
			if len(f.lib.creates) != 1 || f.lib.creates[0].name != f.kindNm {
				t.Errorf("creates %+v, want %s created again", f.lib.creates, f.kindNm)
			}
			s := f.prog.step("kind cluster " + f.kindNm + " was never finished")
			if s == nil || !s.done || s.err != nil || !strings.Contains(s.title, tt.reason) || !strings.Contains(s.title, "creating it again") {
				t.Errorf("steps %q, want a finished step saying the cluster was never finished (%s) and is made again", f.prog.titles(), tt.reason)
			}
			if got == nil || got.Endpoint != "https://127.0.0.1:6444" {
				t.Errorf("Ensure = %+v, want the new cluster", got)
			}
		})
	}
}

func TestEnsureCreateFailureCleansUp(t *testing.T) {
	tests := []struct {
		name      string
		deleteErr error
		wantMsg   string
	}{
		{name: "cleanup works", wantMsg: `": node image pull failed`},
		{name: "cleanup fails", deleteErr: errors.New("docker gone"), wantMsg: "removing what was made also failed: docker gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			createErr := errors.New("node image pull failed")
			f.lib.createErr = createErr
			f.lib.deleteErr = tt.deleteErr

			got, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, nil)
			if err == nil {
				t.Fatalf("Ensure = %+v, want error", got)
			}
			if !errors.Is(err, createErr) {
				t.Errorf("error %v does not wrap the kind error", err)
			}
			if !strings.Contains(err.Error(), `create kind cluster "`+f.kindNm+`"`) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to name the cluster and contain %q", err, tt.wantMsg)
			}
			// What is left is for tether down to remove: the command says so.
			var re *RepairError
			if tt.deleteErr != nil && (!errors.As(err, &re) || !re.Down) {
				t.Errorf("error %v is not a RepairError to take down", err)
			}
			wantDelete := [2]string{f.kindNm, filepath.Join(f.state, "clusters", "hub", "kind.kubeconfig")}
			if len(f.lib.deletes) != 1 || f.lib.deletes[0] != wantDelete {
				t.Errorf("deletes = %q, want cleanup %q", f.lib.deletes, wantDelete)
			}
			if s := f.prog.steps; len(s) != 1 || !s[0].done || s[0].err == nil {
				t.Errorf("progress steps %+v, want one failed step", s)
			}
		})
	}
}

// Spokes reach the hub by its control-plane container's name, which
// survives a restart in which Docker hands out another IP.
func TestEnsureInternalEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		nodes   func(kindName string) []nodes.Node
		want    string
		wantErr string
	}{
		{
			name: "control-plane container name",
			nodes: func(k string) []nodes.Node {
				return []nodes.Node{&fakeNode{name: k + "-control-plane", role: "control-plane", ipv4: "172.18.0.5"}}
			},
			want: "-control-plane:6443",
		},
		{
			name: "control plane among workers",
			nodes: func(k string) []nodes.Node {
				return []nodes.Node{
					&fakeNode{name: k + "-worker", role: "worker", ipv4: "172.18.0.7"},
					&fakeNode{name: k + "-control-plane", role: "control-plane", ipv4: "172.18.0.6"},
				}
			},
			want: "-control-plane:6443",
		},
		{
			name:    "no nodes",
			nodes:   func(string) []nodes.Node { return nil },
			wantErr: "has no nodes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			ns := tt.nodes(f.kindNm)
			f.lib.nodes[f.kindNm] = ns
			for _, n := range ns {
				f.run.answers["docker inspect --format {{.State.Running}} "+n.String()] = fakeAnswer{stdout: "true"}
			}
			got, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Ensure error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if want := "https://" + f.kindNm + tt.want; got.InternalEndpoint != want {
				t.Errorf("InternalEndpoint %q, want %q", got.InternalEndpoint, want)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	missing := &exec.Error{Name: "docker", Err: exec.ErrNotFound}
	tests := []struct {
		name    string
		answer  fakeAnswer
		wantErr string
	}{
		{name: "engine answers", answer: fakeAnswer{stdout: "29.1.3\n"}},
		{
			name: "client only",
			answer: fakeAnswer{
				stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\nsecond line\n",
				err:    errors.New("exit status 1"),
			},
			wantErr: "no Docker engine answers (docker version: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?): start Docker",
		},
		{
			name:    "client only, silent",
			answer:  fakeAnswer{err: errors.New("exit status 1")},
			wantErr: "no Docker engine answers (docker version: exit status 1): start Docker",
		},
		{
			name:    "no server version",
			answer:  fakeAnswer{stdout: "\n"},
			wantErr: "no Docker engine answers (docker version: no server version): start Docker",
		},
		{
			name:    "binary missing",
			answer:  fakeAnswer{err: missing},
			wantErr: "docker is not installed: install Docker Engine or Docker Desktop",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			f.run.answers = map[string]fakeAnswer{"docker version --format {{.Server.Version}}": tt.answer}
			err := f.p.Preflight(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Preflight: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Preflight error\n got %v\nwant %s", err, tt.wantErr)
			}
			// The command adds "or use --provider embedded" for this cause.
			var ee *EngineError
			if tt.wantErr != "" && !errors.As(err, &ee) {
				t.Errorf("Preflight error %v is not an EngineError", err)
			}
			if len(f.run.deadlines) != 1 || !f.run.deadlines[0] {
				t.Errorf("docker version ran without a timeout")
			}
		})
	}
}

func TestPreflightTimeout(t *testing.T) {
	hang := func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
		<-ctx.Done()
		return nil, nil, errors.New("signal: killed")
	}
	err := engineAnswers(context.Background(), hang, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no Docker engine answers (docker version: no answer within 10ms)") {
		t.Fatalf("error %v, want a timeout message", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := engineAnswers(ctx, hang, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the caller's cancellation", err)
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name        string
		exists      bool
		wantDeletes int
	}{
		{name: "existing cluster", exists: true, wantDeletes: 1},
		{name: "missing cluster", exists: false, wantDeletes: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			if tt.exists {
				f.lib.clusters = []string{f.kindNm}
			}
			dir := filepath.Join(f.state, "clusters", "hub")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "admin.kubeconfig"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			// A damaged record must not steer removal elsewhere.
			elsewhere := t.TempDir()
			c := state.Cluster{Name: "hub", Provider: "kind", Dir: elsewhere}

			if err := f.p.Delete(context.Background(), c); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if len(f.lib.deletes) != tt.wantDeletes {
				t.Errorf("kind Delete called %d times, want %d", len(f.lib.deletes), tt.wantDeletes)
			}
			if tt.exists {
				want := [2]string{f.kindNm, filepath.Join(dir, "kind.kubeconfig")}
				if f.lib.deletes[0] != want {
					t.Errorf("kind Delete%q, want %q", f.lib.deletes[0], want)
				}
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("cluster folder still there (stat: %v)", err)
			}
			if _, err := os.Stat(elsewhere); err != nil {
				t.Errorf("removed a folder outside the state folder: %v", err)
			}
			// Deleting again is not an error.
			if err := f.p.Delete(context.Background(), c); err != nil {
				t.Errorf("second Delete: %v", err)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name    string
		exists  bool
		running string
		want    []string
	}{
		{name: "healthy", exists: true, running: "true"},
		{name: "gone", want: []string{"kind cluster %s no longer exists (run tether up)"}},
		{name: "stopped", exists: true, running: "false", want: []string{"node container %s-control-plane is not running (run tether up)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			if tt.exists {
				f.lib.clusters = []string{f.kindNm}
			}
			f.run.answers["docker inspect --format {{.State.Running}} "+f.kindNm+"-control-plane"] = fakeAnswer{stdout: tt.running + "\n"}
			got := f.p.Problems(context.Background(), state.Cluster{Name: "hub", Provider: "kind"})
			var want []string
			for _, w := range tt.want {
				want = append(want, fmt.Sprintf(w, f.kindNm))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
				t.Errorf("Problems = %q, want %q", got, want)
			}
		})
	}
}

func TestLoadImageArchive(t *testing.T) {
	f := newFixture(t, "hub")
	worker := &fakeNode{name: f.kindNm + "-worker", role: "worker", ipv4: "172.18.0.3"}
	f.lib.nodes[f.kindNm] = append(f.lib.nodes[f.kindNm], worker)
	archive := filepath.Join(t.TempDir(), "image.tar")
	content := []byte("an OCI image tarball")
	if err := os.WriteFile(archive, content, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := f.p.LoadImageArchive(context.Background(), "hub", archive); err != nil {
		t.Fatalf("LoadImageArchive: %v", err)
	}
	for _, n := range []*fakeNode{f.node, worker} {
		var imported bool
		for _, c := range n.commands() {
			if c.args[0] == "ctr" && c.hasArgs("images", "import") {
				imported = true
				if !c.ran {
					t.Errorf("node %s: import command not run", n.name)
				}
				if !bytes.Equal(c.input, content) {
					t.Errorf("node %s: import stdin %q, want the archive %q", n.name, c.input, content)
				}
			}
		}
		if !imported {
			t.Errorf("node %s: no ctr images import; commands %v", n.name, n.commands())
		}
	}
}

func TestLoadImageArchiveErrors(t *testing.T) {
	t.Run("node fails", func(t *testing.T) {
		f := newFixture(t, "hub")
		f.node.failCtr = true
		archive := filepath.Join(t.TempDir(), "image.tar")
		if err := os.WriteFile(archive, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := f.p.LoadImageArchive(context.Background(), "hub", archive)
		if err == nil || !strings.Contains(err.Error(), "node "+f.kindNm+"-control-plane") {
			t.Fatalf("error %v, want it to name the node", err)
		}
	})
	t.Run("archive missing", func(t *testing.T) {
		f := newFixture(t, "hub")
		err := f.p.LoadImageArchive(context.Background(), "hub", filepath.Join(t.TempDir(), "nope.tar"))
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("error %v, want not-exist", err)
		}
		if n := len(f.node.commands()); n != 0 {
			t.Errorf("ran %d commands in the node for a missing archive", n)
		}
	})
}

func TestInternalKubeconfig(t *testing.T) {
	f := newFixture(t, "hub")
	got, err := f.p.InternalKubeconfig("hub")
	if err != nil {
		t.Fatalf("InternalKubeconfig: %v", err)
	}
	if !strings.Contains(string(got), "server: https://"+f.kindNm+"-control-plane:6443") {
		t.Errorf("internal kubeconfig %s does not point at the control-plane container", got)
	}
	if _, err := f.p.InternalKubeconfig("nope"); err == nil || !strings.Contains(err.Error(), `"`+f.p.ClusterName("nope")+`"`) {
		t.Errorf("error %v, want it to name the cluster", err)
	}
}

func TestLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a := newLogAdapter(l)
	a.V(0).Infof("Ensuring node image (%s)", "img")
	a.V(1).Info("debug detail")
	a.Warnf("careful %d", 1)
	a.Errorf("broke %s", "x")
	if a.V(1).Enabled() || !a.V(0).Enabled() {
		t.Errorf("Enabled: V(0)=%v V(1)=%v, want true false", a.V(0).Enabled(), a.V(1).Enabled())
	}
	out := buf.String()
	for _, want := range []string{`level=INFO msg="Ensuring node image (img)"`, `level=WARN msg="careful 1"`, `level=ERROR msg="broke x"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "debug detail") {
		t.Errorf("V(1) line logged at info: %q", out)
	}
}

func TestNewUsesKindLibrary(t *testing.T) {
	p := New(providers.Env{StateDir: t.TempDir()})
	if _, ok := p.lib.(realKind); !ok {
		t.Fatalf("New uses %T, want the kind library", p.lib)
	}
	if p.Name() != "kind" {
		t.Fatalf("Name() = %q", p.Name())
	}
}
