package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tether-dev/tether/cluster/internal/state"
)

// ContextPrefix starts the name of every kubeconfig context tether writes.
const ContextPrefix = "tether-"

// ContextName is the kubeconfig context of a workbench cluster.
func ContextName(cluster string) string { return ContextPrefix + cluster }

// DefaultKubeconfigPath is the file kubectl would write to: the first entry
// of KUBECONFIG, else ~/.kube/config (kind makes the same choice).
func DefaultKubeconfigPath() string {
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		for _, p := range filepath.SplitList(env) {
			if p != "" {
				return p
			}
		}
	}
	return clientcmd.RecommendedHomeFile
}

// mergeContexts adds or replaces a tether-<name> cluster, user and context
// for each cluster, leaving every other entry of the file alone. The hub
// becomes the current context, as kind switches to the cluster it made.
func mergeContexts(path string, clusters []state.Cluster, current string) error {
	return editKubeconfig(path, func(cfg *clientcmdapi.Config) error {
		for _, c := range clusters {
			own, err := clientcmd.LoadFromFile(c.Kubeconfig)
			if err != nil {
				return fmt.Errorf("read kubeconfig of %q: %w", c.Name, err)
			}
			ctx, ok := own.Contexts[own.CurrentContext]
			if !ok {
				return fmt.Errorf("kubeconfig of %q has no current context", c.Name)
			}
			name := ContextName(c.Name)
			cfg.Clusters[name] = own.Clusters[ctx.Cluster].DeepCopy()
			cfg.AuthInfos[name] = own.AuthInfos[ctx.AuthInfo].DeepCopy()
			cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: ctx.Namespace}
		}
		if current != "" {
			cfg.CurrentContext = ContextName(current)
		}
		return nil
	})
}

// removeContexts deletes the tether-<name> entries of the given clusters.
func removeContexts(path string, names []string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return editKubeconfig(path, func(cfg *clientcmdapi.Config) error {
		for _, n := range names {
			name := ContextName(n)
			delete(cfg.Clusters, name)
			delete(cfg.AuthInfos, name)
			delete(cfg.Contexts, name)
			if cfg.CurrentContext == name {
				cfg.CurrentContext = ""
			}
		}
		return nil
	})
}

// editKubeconfig applies edit to the file under an exclusive lock, so a
// concurrent kind or kubectl write is not lost.
func editKubeconfig(path string, edit func(*clientcmdapi.Config) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create kubeconfig folder: %w", err)
	}
	unlock, err := lockKubeconfig(path)
	if err != nil {
		return err
	}
	defer unlock()
	cfg := clientcmdapi.NewConfig()
	if _, err := os.Stat(path); err == nil {
		cfg, err = clientcmd.LoadFromFile(path)
		if err != nil {
			return fmt.Errorf("kubeconfig %s cannot be read (%v): fix or move it, then run the command again", path, err)
		}
	}
	if err := edit(cfg); err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// lockKubeconfig takes an exclusive flock on path.tether.lock. The lock file
// is removed on unlock; a waiter that locked the removed file sees that its
// file is no longer the one at the path and tries again, so two writers
// never both think they hold the lock.
func lockKubeconfig(path string) (func(), error) {
	name := path + ".tether.lock"
	for {
		lock, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock kubeconfig %s: %w", path, err)
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			lock.Close()
			return nil, fmt.Errorf("lock kubeconfig %s: %w", path, err)
		}
		held, err := lock.Stat()
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("lock kubeconfig %s: %w", path, err)
		}
		if current, err := os.Stat(name); err == nil && os.SameFile(held, current) {
			return func() {
				os.Remove(name) // while still locked: see above
				lock.Close()
			}, nil
		}
		lock.Close()
	}
}
