package cluster

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Provider names accepted by --provider and tether.yaml.
const (
	ProviderEmbedded = "embedded"
	ProviderKind     = "kind"
	ProviderExisting = "existing"
)

// ProviderNames returns the accepted --provider values, in the order doctor
// reports them.
func ProviderNames() []string { return []string{ProviderKind, ProviderEmbedded, ProviderExisting} }

// Config says which clusters the workbench has. It is read from tether.yaml
// and flags; the zero Provider means "pick for me".
type Config struct {
	Provider string          `json:"provider,omitempty"`
	Hub      ClusterConfig   `json:"hub"`
	Spokes   []ClusterConfig `json:"spokes"`
	// Kind holds settings of the kind provider (kind: in tether.yaml).
	Kind KindConfig `json:"kind,omitempty"`
}

// KindConfig is what the kind provider can be told.
type KindConfig struct {
	// NodeImage is the node image every kind node boots (--node-image),
	// used as it is: Docker's copy when it has one, so a local tag works
	// offline, else pulled. Empty lets tether choose: its own offline-built
	// image or kind's default when Docker has one, else kind's default
	// pulled, else its own built offline.
	NodeImage string `json:"nodeImage,omitempty"`
}

// MaxClusterNameLength bounds cluster names: kind names a cluster's node
// container, which is also its host name and node name,
// tether-<6-character workbench id>-<name>-control-plane, and a host name
// has at most 63 characters.
const MaxClusterNameLength = 35

// ClusterConfig is one cluster.
type ClusterConfig struct {
	Name string `json:"name"`
	// APIServerPort pins the API server to 127.0.0.1:<port>; 0 picks one.
	APIServerPort int `json:"apiServerPort,omitempty"`
	// Context is the kubeconfig context naming this cluster when the
	// provider is "existing".
	Context string `json:"context,omitempty"`
}

// DefaultConfig is a hub and two spokes.
func DefaultConfig() Config {
	return Config{Hub: ClusterConfig{Name: "hub"}, Spokes: SpokeNames(2)}
}

// SpokeNames returns n spokes named spoke-1 … spoke-n.
func SpokeNames(n int) []ClusterConfig {
	out := make([]ClusterConfig, n)
	for i := range out {
		out[i] = ClusterConfig{Name: fmt.Sprintf("spoke-%d", i+1)}
	}
	return out
}

// LoadConfig reads a tether.yaml and checks it (Validate). Unknown fields
// are errors: a typo must not silently fall back to a default.
func LoadConfig(path string) (Config, error) {
	cfg, err := readConfig(path)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// readConfig is LoadConfig without the check, for a configuration that is
// checked once when it is finally used (Workbench.Up).
func readConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read %s: %w", path, err)
	}
	cfg := DefaultConfig()
	cfg.Spokes = nil
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Hub.Name == "" {
		cfg.Hub.Name = "hub"
	}
	return cfg, nil
}

// WorkbenchFile is the workbench file an up reads when there is one in
// the working directory and no other is named.
const WorkbenchFile = "tether.yaml"

// BaseConfig is what an up starts from, for `tether up` (before its flags)
// and the UI's u alike: the file at path, else ./tether.yaml when there is
// one, else recorded (the clusters the workbench runs now, from
// Workbench.RecordedConfig, so that an up does not undo `spoke add`), else
// a hub and two spokes. A file that does not parse is an error; the
// result is not checked here, but once by Workbench.Up, so one up checks
// it once.
func BaseConfig(path string, recorded Config) (Config, error) {
	if path == "" {
		if _, err := os.Stat(WorkbenchFile); !errors.Is(err, os.ErrNotExist) {
			path = WorkbenchFile
		}
	}
	switch {
	case path != "":
		return readConfig(path)
	case recorded.Hub.Name != "":
		return recorded, nil
	}
	return DefaultConfig(), nil
}

// Clusters returns the hub followed by the spokes.
func (c Config) Clusters() []ClusterConfig {
	return append([]ClusterConfig{c.Hub}, c.Spokes...)
}

// Validate checks names, ports and the provider, returning every problem at
// once so a user fixes tether.yaml in one go.
func (c Config) Validate() error {
	var errs []error
	if c.Provider != "" && !validProvider(c.Provider) {
		errs = append(errs, fmt.Errorf("unknown provider %q: use one of %s", c.Provider, strings.Join(ProviderNames(), ", ")))
	}
	seen := map[string]bool{}
	ports := map[int]string{}
	for _, cl := range c.Clusters() {
		if msgs := validation.IsDNS1123Label(cl.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("cluster name %q is not DNS-safe (%s): use lower-case letters, digits and '-', at most 63 characters, e.g. spoke-1", cl.Name, msgs[0]))
		} else if len(cl.Name) > MaxClusterNameLength {
			errs = append(errs, fmt.Errorf("cluster name %q is longer than %d characters (kind makes it part of a host name): choose a shorter name", cl.Name, MaxClusterNameLength))
		}
		if seen[cl.Name] {
			errs = append(errs, fmt.Errorf("cluster name %q is used twice: every cluster needs its own name", cl.Name))
		}
		seen[cl.Name] = true
		if cl.APIServerPort < 0 || cl.APIServerPort > 65535 {
			errs = append(errs, fmt.Errorf("cluster %q: apiServerPort %d is not a port (1-65535, or 0 to pick one)", cl.Name, cl.APIServerPort))
		} else if cl.APIServerPort != 0 {
			if other, ok := ports[cl.APIServerPort]; ok {
				errs = append(errs, fmt.Errorf("clusters %q and %q both ask for apiServerPort %d: give each its own", other, cl.Name, cl.APIServerPort))
			}
			ports[cl.APIServerPort] = cl.Name
		}
		if c.Provider == ProviderExisting && cl.Context == "" {
			errs = append(errs, &FieldError{Field: "context", Cluster: cl.Name, Err: errors.New("the existing provider needs a kubeconfig context for it (context: in tether.yaml)")})
		}
	}
	if err := validNodeImage(c.Kind.NodeImage); err != nil {
		errs = append(errs, err)
	}
	if c.Kind.NodeImage != "" && c.Provider != "" && c.Provider != ProviderKind {
		errs = append(errs, &FieldError{Field: "kind.nodeImage", Provider: ProviderKind, Err: fmt.Errorf("kind.nodeImage %q is for the kind provider, and the provider is %s: drop it, or choose the kind provider", c.Kind.NodeImage, c.Provider)})
	}
	return errors.Join(errs...)
}

// validNodeImage refuses what Docker would not take as an image reference,
// before anything is made.
func validNodeImage(image string) error {
	if image == "" {
		return nil
	}
	if _, err := name.ParseReference(image); err != nil {
		return &FieldError{Field: "kind.nodeImage", Err: fmt.Errorf("kind.nodeImage %q is not an image reference (%v): write it as repository:tag, e.g. kindest/node:v1.37.0", image, err)}
	}
	return nil
}

func validProvider(p string) bool {
	for _, n := range ProviderNames() {
		if n == p {
			return true
		}
	}
	return false
}
