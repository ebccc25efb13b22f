package cluster

import (
	"errors"
	"fmt"
	"os"
	"strings"

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
}

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

// LoadConfig reads a tether.yaml. Unknown fields are errors: a typo must not
// silently fall back to a default.
func LoadConfig(path string) (Config, error) {
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
	return cfg, cfg.Validate()
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
		} else if len(cl.Name) > 40 {
			// kind prefixes container names and the kubeconfig context adds
			// "tether-"; keep room for both.
			errs = append(errs, fmt.Errorf("cluster name %q is longer than 40 characters: choose a shorter name", cl.Name))
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
			errs = append(errs, fmt.Errorf("cluster %q: the existing provider needs a kubeconfig context for it (--context %s=<context> or context: in tether.yaml)", cl.Name, cl.Name))
		}
	}
	return errors.Join(errs...)
}

func validProvider(p string) bool {
	for _, n := range ProviderNames() {
		if n == p {
			return true
		}
	}
	return false
}
