package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
)

func TestUpNodeImageFlag(t *testing.T) {
	cmd := newUp(&globals{})
	if err := cmd.ParseFlags([]string{"--provider", "kind", "--node-image", "tether.local/kind-node:v1.37.2-abc"}); err != nil {
		t.Fatal(err)
	}
	f := upFlagsOf(t, cmd)
	cfg, err := f.resolve(cmd, cluster.Config{})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if cfg.Kind.NodeImage != "tether.local/kind-node:v1.37.2-abc" || cfg.Provider != cluster.ProviderKind {
		t.Errorf("config %+v, want the node image for the kind provider", cfg)
	}
	// Without the flag, the recorded image stays.
	cmd = newUp(&globals{})
	recorded := cluster.Config{Provider: cluster.ProviderKind, Hub: cluster.ClusterConfig{Name: "hub"}, Kind: cluster.KindConfig{NodeImage: "kindest/node:v1.37.0"}}
	cfg, err = upFlagsOf(t, cmd).resolve(cmd, recorded)
	if err != nil || cfg.Kind.NodeImage != "kindest/node:v1.37.0" {
		t.Errorf("resolve without --node-image = %+v, %v; want the recorded image", cfg, err)
	}
}

// upFlagsOf digs the flags back out of the command: resolve reads them.
func upFlagsOf(t *testing.T, cmd *cobra.Command) *upFlags {
	t.Helper()
	f := &upFlags{}
	fl := cmd.Flags()
	f.provider, _ = fl.GetString("provider")
	f.nodeImage, _ = fl.GetString("node-image")
	f.spokes, _ = fl.GetInt("spokes")
	return f
}

// On macOS and Windows the kind network lives in Docker's VM: up prints
// only the loopback addresses there, and says why the others are missing.
func TestUpPrintsOnlyReachableAddresses(t *testing.T) {
	wb, err := cluster.New(cluster.Options{StateDir: filepath.Join(t.TempDir(), "state"), CacheDir: t.TempDir(), Kubeconfig: filepath.Join(t.TempDir(), "config")})
	if err != nil {
		t.Fatal(err)
	}
	clusters := []cluster.Cluster{
		{Name: "hub", Role: "hub", Provider: cluster.ProviderKind, Endpoint: "https://127.0.0.1:40123", Context: "tether-hub"},
		{Name: "odd", Role: "spoke", Provider: cluster.ProviderKind, Endpoint: "https://172.18.0.3:6443", Context: "tether-odd"},
	}
	st := &fleet.State{Provider: cluster.ProviderKind, Principal: "tether-0a1b2c-hub-control-plane:30443", GitURL: "http://tether-0a1b2c-hub-control-plane:30444/sample.git"}
	for _, tt := range []struct {
		goos    string
		want    []string
		wantNot []string
	}{
		{goos: "linux", want: []string{"https://127.0.0.1:40123", "https://172.18.0.3:6443", "principal at tether-0a1b2c-hub-control-plane:30443", "sample.git"}, wantNot: []string{"not routable"}},
		{goos: "darwin", want: []string{"https://127.0.0.1:40123", "(kind network only)", "not routable from this host on darwin"}, wantNot: []string{"172.18.0.3", "30443", "30444"}},
		{goos: "windows", want: []string{"https://127.0.0.1:40123", "not routable from this host on windows"}, wantNot: []string{"172.18.0.3", "30443"}},
	} {
		t.Run(tt.goos, func(t *testing.T) {
			var out bytes.Buffer
			g := &globals{out: &out, goos: tt.goos}
			printFleet(g, st)
			printUp(g, wb, clusters)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out.String(), w) {
					t.Errorf("output shows %q:\n%s", w, out.String())
				}
			}
		})
	}
	// Other providers' addresses are the user's or loopback: always shown.
	if !hostReaches("darwin", cluster.ProviderExisting, "https://10.0.0.5:6443") || !hostReaches("darwin", cluster.ProviderKind, "localhost:8080") {
		t.Error("hostReaches hides an existing cluster's address or localhost")
	}
}

func TestPrintProvidersWarnings(t *testing.T) {
	var out bytes.Buffer
	n := printProviders(&out, []cluster.Check{
		{Provider: "kind", OK: true, Default: true, Detail: "a Docker engine answers", Warnings: []string{"fs.inotify.max_user_watches is 8192 (kind needs 524288): run sudo sysctl"}},
		{Provider: "embedded", Detail: "no go"},
	})
	want := "✓ kind      (default) a Docker engine answers\n    ! fs.inotify.max_user_watches is 8192 (kind needs 524288): run sudo sysctl\n✗ embedded  no go\n"
	if n != 1 || out.String() != want {
		t.Errorf("printProviders = %d,\n%s\nwant 1,\n%s", n, out.String(), want)
	}
}

// A configuration the running clusters do not follow is said on stderr,
// one line per warning, each naming its cluster.
func TestUpPrintsClusterWarnings(t *testing.T) {
	var errw bytes.Buffer
	g := &globals{errw: &errw}
	printWarnings(g, []cluster.Cluster{
		{Name: "hub", Warnings: []string{"cluster hub keeps its API server on 127.0.0.1:41234, not the apiServerPort 6443"}},
		{Name: "spoke-1"},
	})
	if got := errw.String(); got != "warning: cluster hub keeps its API server on 127.0.0.1:41234, not the apiServerPort 6443\n" {
		t.Errorf("stderr = %q", got)
	}
}
