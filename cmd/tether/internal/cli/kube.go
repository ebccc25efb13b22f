package cli

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags select a cluster the way kubectl does.
type kubeFlags struct {
	context   string
	namespace string
}

func (k *kubeFlags) restConfig(g *globals) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if g.kubeconfig != "" {
		rules.ExplicitPath = g.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	if err != nil {
		what := "the current context"
		if k.context != "" {
			what = fmt.Sprintf("context %q", k.context)
		}
		return nil, fmt.Errorf("%s: %w (run `tether up`, or pass --context tether-<cluster>)", what, err)
	}
	return cfg, nil
}
