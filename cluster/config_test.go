package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", 36)
	tests := []struct {
		name string
		cfg  Config
		// want lists substrings that must all be in the error; nil means valid.
		want []string
		// field and cluster, when set, are those of the FieldError wanted.
		field, cluster string
	}{
		{name: "default", cfg: DefaultConfig()},
		{name: "no spokes", cfg: Config{Hub: ClusterConfig{Name: "hub"}}},
		{name: "every provider", cfg: Config{Provider: ProviderEmbedded, Hub: ClusterConfig{Name: "hub"}, Spokes: SpokeNames(3)}},
		{name: "kind", cfg: Config{Provider: ProviderKind, Hub: ClusterConfig{Name: "hub"}}},
		{name: "35 characters is fine", cfg: Config{Hub: ClusterConfig{Name: strings.Repeat("a", 35)}}},
		{name: "kind node image", cfg: Config{Provider: ProviderKind, Hub: ClusterConfig{Name: "hub"}, Kind: KindConfig{NodeImage: "tether.local/kind-node:v1.37.2-0123abcd"}}},
		{name: "node image with digest, provider automatic", cfg: Config{Hub: ClusterConfig{Name: "hub"}, Kind: KindConfig{NodeImage: "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"}}},
		{
			name:  "node image not a reference",
			cfg:   Config{Hub: ClusterConfig{Name: "hub"}, Kind: KindConfig{NodeImage: "Kindest/Node:v1 37"}},
			want:  []string{`kind.nodeImage "Kindest/Node:v1 37" is not an image reference`, "repository:tag"},
			field: "kind.nodeImage",
		},
		{
			name: "node image on another provider",
			cfg:  Config{Provider: ProviderEmbedded, Hub: ClusterConfig{Name: "hub"}, Kind: KindConfig{NodeImage: "kindest/node:v1.37.0"}},
			want: []string{"kind.nodeImage", "is for the kind provider", "embedded"},
		},
		{
			name: "distinct pinned ports",
			cfg:  Config{Hub: ClusterConfig{Name: "hub", APIServerPort: 6443}, Spokes: []ClusterConfig{{Name: "a", APIServerPort: 6444}, {Name: "b"}, {Name: "c"}}},
		},
		{
			name: "port bounds",
			cfg:  Config{Hub: ClusterConfig{Name: "hub", APIServerPort: 1}, Spokes: []ClusterConfig{{Name: "a", APIServerPort: 65535}}},
		},
		{
			name: "existing with contexts",
			cfg:  Config{Provider: ProviderExisting, Hub: ClusterConfig{Name: "hub", Context: "kind-hub"}, Spokes: []ClusterConfig{{Name: "a", Context: "kind-a"}}},
		},
		{
			name: "existing, hub only",
			cfg:  Config{Provider: ProviderExisting, Hub: ClusterConfig{Name: "hub", Context: "x"}},
		},
		{
			name: "unknown provider",
			cfg:  Config{Provider: "docker", Hub: ClusterConfig{Name: "hub"}},
			want: []string{`unknown provider "docker"`, "kind", "embedded", "existing"},
		},
		{
			name: "upper case and underscore",
			cfg:  Config{Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: "Bad_Name"}}},
			want: []string{`"Bad_Name"`, "not DNS-safe"},
		},
		{
			name: "leading dash",
			cfg:  Config{Hub: ClusterConfig{Name: "-x"}},
			want: []string{`"-x"`, "not DNS-safe"},
		},
		{
			name: "empty name",
			cfg:  Config{Hub: ClusterConfig{Name: ""}},
			want: []string{`""`, "not DNS-safe"},
		},
		{
			name: "longer than 35",
			cfg:  Config{Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: long}}},
			want: []string{long, "longer than 35"},
		},
		{
			name: "duplicate names",
			cfg:  Config{Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: "a"}, {Name: "a"}}},
			want: []string{`"a" is used twice`},
		},
		{
			name: "spoke named like the hub",
			cfg:  Config{Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: "hub"}}},
			want: []string{`"hub" is used twice`},
		},
		{
			name: "duplicate pinned port",
			cfg:  Config{Hub: ClusterConfig{Name: "hub", APIServerPort: 7000}, Spokes: []ClusterConfig{{Name: "a", APIServerPort: 7000}}},
			want: []string{`"hub" and "a"`, "apiServerPort 7000"},
		},
		{
			name: "port too high",
			cfg:  Config{Hub: ClusterConfig{Name: "hub", APIServerPort: 70000}},
			want: []string{`cluster "hub"`, "apiServerPort 70000 is not a port"},
		},
		{
			name: "negative port",
			cfg:  Config{Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: "a", APIServerPort: -1}}},
			want: []string{`cluster "a"`, "apiServerPort -1 is not a port"},
		},
		{
			name:  "existing without context",
			cfg:   Config{Provider: ProviderExisting, Hub: ClusterConfig{Name: "hub", Context: "kind-hub"}, Spokes: []ClusterConfig{{Name: "a"}}},
			want:  []string{`cluster "a"`, "needs a kubeconfig context", "context: in tether.yaml"},
			field: "context", cluster: "a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			// The command adds the flag (--node-image, --context a=...)
			// from the field the error names.
			var fe *FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field || fe.Cluster != tt.cluster) {
				t.Errorf("Validate() = %v, want a FieldError for %s of cluster %q", err, tt.field, tt.cluster)
			}
		})
	}
}

func TestValidateExistingNeedsHubContext(t *testing.T) {
	err := Config{Provider: ProviderExisting, Hub: ClusterConfig{Name: "hub"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `cluster "hub"`) {
		t.Fatalf("Validate() = %v, want the hub named as lacking a context", err)
	}
	// Other providers do not need contexts.
	if err := (Config{Provider: ProviderEmbedded, Hub: ClusterConfig{Name: "hub"}}).Validate(); err != nil {
		t.Fatalf("embedded without contexts: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Provider: "nope",
		Hub:      ClusterConfig{Name: "Hub", APIServerPort: 99999},
		Spokes:   []ClusterConfig{{Name: "a", APIServerPort: 6000}, {Name: "a", APIServerPort: 6000}},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	msg := err.Error()
	for _, want := range []string{
		`unknown provider "nope"`,
		`"Hub" is not DNS-safe`,
		"apiServerPort 99999 is not a port",
		`"a" is used twice`,
		`clusters "a" and "a" both ask for apiServerPort 6000`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 5 {
		t.Errorf("got %d problems, want 5 (one per line):\n%s", n, msg)
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    Config
		wantErr []string // substrings; the file path is always expected too
	}{
		{
			name: "hub defaults to hub, spokes from the file",
			yaml: "spokes:\n- name: eu\n- name: us\n  apiServerPort: 7443\n",
			want: Config{Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: "eu"}, {Name: "us", APIServerPort: 7443}}},
		},
		{
			name: "no spokes listed means none",
			yaml: "provider: embedded\nhub:\n  name: central\n",
			want: Config{Provider: ProviderEmbedded, Hub: ClusterConfig{Name: "central"}},
		},
		{
			name: "existing with contexts",
			yaml: "provider: existing\nhub:\n  name: hub\n  context: kind-hub\nspokes:\n- name: a\n  context: kind-a\n",
			want: Config{Provider: ProviderExisting, Hub: ClusterConfig{Name: "hub", Context: "kind-hub"}, Spokes: []ClusterConfig{{Name: "a", Context: "kind-a"}}},
		},
		{
			name: "kind node image",
			yaml: "provider: kind\nkind:\n  nodeImage: tether.local/kind-node:v1.37.2-0123abcd\n",
			want: Config{Provider: ProviderKind, Hub: ClusterConfig{Name: "hub"}, Kind: KindConfig{NodeImage: "tether.local/kind-node:v1.37.2-0123abcd"}},
		},
		{
			name:    "unknown kind field",
			yaml:    "kind:\n  image: kindest/node:v1.37.0\n",
			wantErr: []string{"image"},
		},
		{
			name:    "unknown top-level field",
			yaml:    "spokess:\n- name: a\n",
			wantErr: []string{"spokess"},
		},
		{
			name:    "unknown cluster field",
			yaml:    "hub:\n  name: hub\n  port: 6443\n",
			wantErr: []string{"port"},
		},
		{
			name:    "not yaml",
			yaml:    "hub: [\n",
			wantErr: []string{"yaml"},
		},
		{
			name:    "validated",
			yaml:    "spokes:\n- name: Bad_Name\n",
			wantErr: []string{"Bad_Name", "not DNS-safe"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tether.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadConfig(path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("LoadConfig() error = %v", err)
				}
				if got.Provider != tt.want.Provider || got.Hub != tt.want.Hub || got.Kind != tt.want.Kind || len(got.Spokes) != len(tt.want.Spokes) {
					t.Fatalf("LoadConfig() = %+v, want %+v", got, tt.want)
				}
				for i := range got.Spokes {
					if got.Spokes[i] != tt.want.Spokes[i] {
						t.Errorf("spoke %d = %+v, want %+v", i, got.Spokes[i], tt.want.Spokes[i])
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadConfig() = %+v, want an error", got)
			}
			// Parse errors name the file; validation errors name the problem.
			if tt.name != "validated" && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadConfig(missing) = %v, want an error naming %s", err, path)
	}
}

func TestClustersHubFirst(t *testing.T) {
	cfg := Config{Hub: ClusterConfig{Name: "h"}, Spokes: SpokeNames(2)}
	var names []string
	for _, c := range cfg.Clusters() {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "h,spoke-1,spoke-2" {
		t.Fatalf("Clusters() = %s", got)
	}
}

func TestBaseConfigReadsTetherYAML(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("tether.yaml", []byte("provider: embedded\nhub:\n  name: main\nspokes:\n  - name: eu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := BaseConfig("", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provider != "embedded" || cfg.Hub.Name != "main" || len(cfg.Spokes) != 1 || cfg.Spokes[0].Name != "eu" {
		t.Errorf("config = %+v", cfg)
	}
	if err := os.WriteFile("tether.yaml", []byte("hub: {name: main}\nspokez: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := BaseConfig("", Config{}); err == nil {
		t.Error("a typo in tether.yaml should be an error")
	}
}

func TestBaseConfigKeepsTheRunningWorkbenchsSpokes(t *testing.T) {
	t.Chdir(t.TempDir())
	recorded := Config{Provider: "embedded", Hub: ClusterConfig{Name: "hub"},
		Spokes: []ClusterConfig{{Name: "spoke-1"}, {Name: "spoke-2"}, {Name: "spoke-3"}}}
	cfg, err := BaseConfig("", recorded)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spokes) != 3 || cfg.Spokes[2].Name != "spoke-3" {
		t.Errorf("a bare up on a workbench with an added spoke would bring up %+v", cfg.Spokes)
	}
	cfg, err = BaseConfig("", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spokes) != 2 || cfg.Hub.Name != "hub" {
		t.Errorf("without a workbench the default is a hub and two spokes, got %+v", cfg)
	}
	if err := os.WriteFile("tether.yaml", []byte("hub:\n  name: main\nspokes:\n  - name: eu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = BaseConfig("", recorded)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hub.Name != "main" || len(cfg.Spokes) != 1 {
		t.Errorf("tether.yaml must win over the running workbench, got %+v", cfg)
	}
}

// BaseConfig leaves the check to Workbench.Up, so one up checks once; a
// file that does not parse is still an error at once.
func TestBaseConfigDoesNotCheck(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("tether.yaml", []byte("spokes:\n- name: Bad_Name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := BaseConfig("", Config{})
	if err != nil || len(cfg.Spokes) != 1 || cfg.Spokes[0].Name != "Bad_Name" {
		t.Fatalf("BaseConfig = %+v, %v; want the file as it is", cfg, err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not DNS-safe") {
		t.Errorf("Validate = %v", err)
	}
}
