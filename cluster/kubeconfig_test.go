package cluster

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tether-dev/tether/cluster/internal/state"
)

// adminKubeconfig writes a kubeconfig the way a provider does: one cluster,
// user and context under the provider's own names.
func adminKubeconfig(t *testing.T, name, server string) state.Cluster {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["own-"+name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: []byte("ca-" + name)}
	cfg.AuthInfos["admin-"+name] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("cert-" + name), ClientKeyData: []byte("key-" + name)}
	cfg.Contexts["ctx-"+name] = &clientcmdapi.Context{Cluster: "own-" + name, AuthInfo: "admin-" + name, Namespace: "ns-" + name}
	cfg.CurrentContext = "ctx-" + name
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return state.Cluster{Name: name, Kubeconfig: path, Endpoint: server}
}

// userKubeconfig writes a kubeconfig that already holds the user's own
// context "other", which is current.
func userKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["other"] = &clientcmdapi.Cluster{Server: "https://other.example:443"}
	cfg.AuthInfos["other"] = &clientcmdapi.AuthInfo{Token: "secret"}
	cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "other", AuthInfo: "other"}
	cfg.CurrentContext = "other"
	path := filepath.Join(t.TempDir(), "home", ".kube", "config")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, path string) *clientcmdapi.Config {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func assertOtherUntouched(t *testing.T, cfg *clientcmdapi.Config) {
	t.Helper()
	if c := cfg.Clusters["other"]; c == nil || c.Server != "https://other.example:443" {
		t.Errorf("cluster other = %+v, want it untouched", c)
	}
	if u := cfg.AuthInfos["other"]; u == nil || u.Token != "secret" {
		t.Errorf("user other = %+v, want it untouched", u)
	}
	if c := cfg.Contexts["other"]; c == nil || c.Cluster != "other" || c.AuthInfo != "other" {
		t.Errorf("context other = %+v, want it untouched", c)
	}
}

func TestMergeContexts(t *testing.T) {
	hub := adminKubeconfig(t, "hub", "https://127.0.0.1:6443")
	spoke := adminKubeconfig(t, "spoke-1", "https://127.0.0.1:7443")
	path := userKubeconfig(t)

	if err := mergeContexts(path, []state.Cluster{hub, spoke}, "hub"); err != nil {
		t.Fatalf("mergeContexts: %v", err)
	}
	cfg := load(t, path)
	assertOtherUntouched(t, cfg)
	if cfg.CurrentContext != "tether-hub" {
		t.Errorf("current-context = %q, want tether-hub", cfg.CurrentContext)
	}
	for _, tc := range []struct{ name, server string }{{"hub", "https://127.0.0.1:6443"}, {"spoke-1", "https://127.0.0.1:7443"}} {
		n := "tether-" + tc.name
		cl, user, ctx := cfg.Clusters[n], cfg.AuthInfos[n], cfg.Contexts[n]
		if cl == nil || user == nil || ctx == nil {
			t.Fatalf("%s: cluster %v, user %v, context %v; want all three", n, cl, user, ctx)
		}
		if cl.Server != tc.server || !bytes.Equal(cl.CertificateAuthorityData, []byte("ca-"+tc.name)) {
			t.Errorf("%s cluster = server %q ca %q", n, cl.Server, cl.CertificateAuthorityData)
		}
		if !bytes.Equal(user.ClientCertificateData, []byte("cert-"+tc.name)) || !bytes.Equal(user.ClientKeyData, []byte("key-"+tc.name)) {
			t.Errorf("%s user = cert %q key %q", n, user.ClientCertificateData, user.ClientKeyData)
		}
		if ctx.Cluster != n || ctx.AuthInfo != n || ctx.Namespace != "ns-"+tc.name {
			t.Errorf("%s context = %+v", n, ctx)
		}
	}
	// The providers' own names never leak into the user's file.
	for _, leaked := range []string{"own-hub", "admin-hub", "ctx-hub"} {
		if cfg.Clusters[leaked] != nil || cfg.AuthInfos[leaked] != nil || cfg.Contexts[leaked] != nil {
			t.Errorf("%s was copied into the user's kubeconfig", leaked)
		}
	}
	if len(cfg.Contexts) != 3 || len(cfg.Clusters) != 3 || len(cfg.AuthInfos) != 3 {
		t.Errorf("got %d contexts, %d clusters, %d users; want 3 each", len(cfg.Contexts), len(cfg.Clusters), len(cfg.AuthInfos))
	}
	if _, err := os.Stat(path + ".tether.lock"); !os.IsNotExist(err) {
		t.Errorf("lock file left behind: %v", err)
	}

	// Merging the same clusters again changes nothing.
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := mergeContexts(path, []state.Cluster{hub, spoke}, "hub"); err != nil {
		t.Fatalf("second mergeContexts: %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("second merge changed the file:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

func TestMergeContextsReplacesChangedCluster(t *testing.T) {
	path := userKubeconfig(t)
	if err := mergeContexts(path, []state.Cluster{adminKubeconfig(t, "hub", "https://127.0.0.1:6443")}, "hub"); err != nil {
		t.Fatal(err)
	}
	// The hub was recreated on another port with new credentials.
	if err := mergeContexts(path, []state.Cluster{adminKubeconfig(t, "hub", "https://127.0.0.1:9443")}, ""); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, path)
	if got := cfg.Clusters["tether-hub"].Server; got != "https://127.0.0.1:9443" {
		t.Errorf("server = %s, want the new one", got)
	}
	if cfg.CurrentContext != "tether-hub" {
		t.Errorf("an empty current must leave current-context alone; got %q", cfg.CurrentContext)
	}
}

func TestMergeContextsCreatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "config")
	if err := mergeContexts(path, []state.Cluster{adminKubeconfig(t, "hub", "https://127.0.0.1:6443")}, "hub"); err != nil {
		t.Fatalf("mergeContexts into a missing file: %v", err)
	}
	cfg := load(t, path)
	if cfg.Contexts["tether-hub"] == nil || cfg.CurrentContext != "tether-hub" {
		t.Fatalf("got %+v", cfg)
	}
}

func TestMergeContextsErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("clusters: [this is: not a kubeconfig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noCurrent := filepath.Join(dir, "nocurrent")
	if err := clientcmd.WriteToFile(*clientcmdapi.NewConfig(), noCurrent); err != nil {
		t.Fatal(err)
	}
	good := adminKubeconfig(t, "hub", "https://127.0.0.1:6443")
	tests := []struct {
		name     string
		userFile string
		clusters []state.Cluster
		want     []string
	}{
		{"broken user kubeconfig", broken, []state.Cluster{good}, []string{broken, "cannot be read"}},
		{"missing admin kubeconfig", filepath.Join(dir, "u1"), []state.Cluster{{Name: "hub", Kubeconfig: filepath.Join(dir, "absent")}}, []string{`"hub"`}},
		{"admin kubeconfig without current context", filepath.Join(dir, "u2"), []state.Cluster{{Name: "hub", Kubeconfig: noCurrent}}, []string{`"hub"`, "no current context"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(tt.userFile)
			err := mergeContexts(tt.userFile, tt.clusters, "hub")
			if err == nil {
				t.Fatal("mergeContexts() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			after, _ := os.ReadFile(tt.userFile)
			if !bytes.Equal(before, after) {
				t.Errorf("a failed merge changed %s", tt.userFile)
			}
		})
	}
}

func TestRemoveContexts(t *testing.T) {
	tests := []struct {
		name        string
		remove      []string
		wantCurrent string
		wantLeft    []string // tether contexts that stay
	}{
		{name: "all", remove: []string{"hub", "spoke-1"}, wantCurrent: ""},
		{name: "spoke only keeps current", remove: []string{"spoke-1"}, wantCurrent: "tether-hub", wantLeft: []string{"tether-hub"}},
		{name: "hub clears current", remove: []string{"hub"}, wantCurrent: "", wantLeft: []string{"tether-spoke-1"}},
		{name: "unknown name is fine", remove: []string{"nosuch"}, wantCurrent: "tether-hub", wantLeft: []string{"tether-hub", "tether-spoke-1"}},
		{name: "nothing", remove: nil, wantCurrent: "tether-hub", wantLeft: []string{"tether-hub", "tether-spoke-1"}},
		// "other" is not a tether name: removing cluster "other" means
		// tether-other, never the user's own context.
		{name: "user's context survives its name", remove: []string{"other"}, wantCurrent: "tether-hub", wantLeft: []string{"tether-hub", "tether-spoke-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := userKubeconfig(t)
			clusters := []state.Cluster{adminKubeconfig(t, "hub", "https://127.0.0.1:6443"), adminKubeconfig(t, "spoke-1", "https://127.0.0.1:7443")}
			if err := mergeContexts(path, clusters, "hub"); err != nil {
				t.Fatal(err)
			}
			if err := removeContexts(path, tt.remove); err != nil {
				t.Fatalf("removeContexts: %v", err)
			}
			cfg := load(t, path)
			assertOtherUntouched(t, cfg)
			if cfg.CurrentContext != tt.wantCurrent {
				t.Errorf("current-context = %q, want %q", cfg.CurrentContext, tt.wantCurrent)
			}
			left := map[string]bool{}
			for _, n := range tt.wantLeft {
				left[n] = true
			}
			for _, n := range []string{"tether-hub", "tether-spoke-1"} {
				has := cfg.Contexts[n] != nil
				if cfg.Clusters[n] != nil != has || cfg.AuthInfos[n] != nil != has {
					t.Errorf("%s: context, cluster and user must go together (context %v cluster %v user %v)", n, has, cfg.Clusters[n] != nil, cfg.AuthInfos[n] != nil)
				}
				if has != left[n] {
					t.Errorf("%s present = %v, want %v", n, has, left[n])
				}
			}
		})
	}
}

func TestRemoveContextsCurrentElsewhere(t *testing.T) {
	path := userKubeconfig(t)
	if err := mergeContexts(path, []state.Cluster{adminKubeconfig(t, "hub", "https://127.0.0.1:6443")}, ""); err != nil {
		t.Fatal(err)
	}
	if err := removeContexts(path, []string{"hub"}); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, path)
	if cfg.CurrentContext != "other" {
		t.Errorf("current-context = %q, want the user's other to stay", cfg.CurrentContext)
	}
	if cfg.Contexts["tether-hub"] != nil {
		t.Error("tether-hub not removed")
	}
}

func TestRemoveContextsMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nope", "config")
	if err := removeContexts(path, []string{"hub"}); err != nil {
		t.Fatalf("removeContexts on a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Errorf("removeContexts created %s", filepath.Dir(path))
	}
}

func TestRemoveContextsBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	content := []byte("apiVersion: v1\nkind: Config\nclusters: {{{\n")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	err := removeContexts(path, []string{"hub"})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("removeContexts on a broken file = %v, want an error naming %s", err, path)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, content) {
		t.Error("the broken file was rewritten")
	}
}

func TestDefaultKubeconfigPath(t *testing.T) {
	sep := string(filepath.ListSeparator)
	tests := []struct {
		name, env, want string
	}{
		{"unset", "", clientcmd.RecommendedHomeFile},
		{"one entry", "/a/config", "/a/config"},
		{"first of several", "/a/config" + sep + "/b/config", "/a/config"},
		{"empty leading entries skipped", sep + sep + "/b/config", "/b/config"},
		{"only separators", sep, clientcmd.RecommendedHomeFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tt.env)
			if got := DefaultKubeconfigPath(); got != tt.want {
				t.Errorf("DefaultKubeconfigPath() = %q, want %q", got, tt.want)
			}
		})
	}
	home, err := os.UserHomeDir()
	if err == nil && clientcmd.RecommendedHomeFile != filepath.Join(home, ".kube", "config") {
		t.Errorf("RecommendedHomeFile = %s, want ~/.kube/config", clientcmd.RecommendedHomeFile)
	}
}

func TestContextName(t *testing.T) {
	if got := ContextName("spoke-1"); got != "tether-spoke-1" {
		t.Fatalf("ContextName = %s", got)
	}
}

func TestMergeContextsConcurrent(t *testing.T) {
	// Parallel writers (two workbenches, or up and down at once) must not
	// lose each other's entries.
	path := userKubeconfig(t)
	const n = 16
	clusters := make([]state.Cluster, n)
	for i := range clusters {
		clusters[i] = adminKubeconfig(t, "c"+strconv.Itoa(i), "https://127.0.0.1:"+strconv.Itoa(7000+i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- mergeContexts(path, []state.Cluster{c}, "")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := load(t, path)
	assertOtherUntouched(t, cfg)
	for _, c := range clusters {
		if cfg.Contexts[ContextName(c.Name)] == nil {
			t.Errorf("context %s lost to a concurrent write", ContextName(c.Name))
		}
	}
}
