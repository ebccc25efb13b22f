package cluster

import (
	"context"
	"fmt"

	"github.com/tether-dev/tether/cluster/internal/providers"
	"github.com/tether-dev/tether/cluster/internal/providers/kind"
)

// PrepareKind makes sure Docker has the kind provider's node image, as the
// first kind `up` would: the given image (pulled if Docker lacks it), else
// tether's offline-built image or kind's default one, pulling kind's or
// building tether's when Docker has neither. It returns the image.
func (w *Workbench) PrepareKind(ctx context.Context, nodeImage string) (string, error) {
	if err := validNodeImage(nodeImage); err != nil {
		return "", err
	}
	if err := w.opts.EngineCheck(ctx); err != nil {
		return "", fmt.Errorf("the kind provider needs a Docker engine: %w", err)
	}
	env := w.env(nil)
	env.NodeImage = nodeImage
	prov, err := w.providerFor(ProviderKind, env)
	if err != nil {
		return "", err
	}
	ip, ok := prov.(interface {
		NodeImage(context.Context) (string, error)
	})
	if !ok {
		return "", fmt.Errorf("the %s provider has no node image", prov.Name())
	}
	return ip.NodeImage(ctx)
}

// DockerEngineAnswers returns nil when a Docker engine (not just the docker
// client) answers, else an error saying what to start or install.
func DockerEngineAnswers(ctx context.Context) error { return kind.EngineAnswers(ctx) }

// LoadImage loads an image archive (docker-archive tarball) into every node
// of a cluster of the workbench whose provider has an image store
// (Traits.ImageStore: kind). Other providers have none: their components
// run as local processes. The cluster is as Up or Clusters reported it;
// the record is not read again.
func (w *Workbench) LoadImage(ctx context.Context, c Cluster, archive string) error {
	name := c.Name
	prov, err := w.provider(c.Provider, nil)
	if err != nil {
		return err
	}
	il, ok := prov.(providers.ImageLoader)
	if !ok {
		return fmt.Errorf("cluster %q runs on the %s provider, which has no image store", name, c.Provider)
	}
	if err := il.LoadImageArchive(ctx, name, archive); err != nil {
		return fmt.Errorf("load image %s into cluster %q: %w", archive, name, err)
	}
	return nil
}
