package kind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tether-dev/tether/cluster/internal/providers/kind/nodeimage"
)

const (
	// defaultPullTimeout bounds the pull of kind's default node image. A
	// machine that cannot reach Docker Hub (air-gapped, a CI sandbox) may
	// hang rather than fail; after this the provider builds an image
	// offline instead.
	defaultPullTimeout = 60 * time.Second
	// userPullTimeout bounds the pull of an image the user named. There is
	// nothing to fall back to, so it gets longer than the default's.
	userPullTimeout = 10 * time.Minute
)

// nodeImages is tether's offline-built node image (package nodeimage);
// tests fake it.
type nodeImages interface {
	Ref() string
	Present(ctx context.Context) bool
	CanBuild() error
	Ensure(ctx context.Context, opts nodeimage.Options) (string, error)
}

type offlineImages struct{}

func (offlineImages) Ref() string                      { return nodeimage.Ref() }
func (offlineImages) Present(ctx context.Context) bool { return nodeimage.Present(ctx) }
func (offlineImages) CanBuild() error                  { return nodeimage.CanBuild() }
func (offlineImages) Ensure(ctx context.Context, opts nodeimage.Options) (string, error) {
	return nodeimage.Ensure(ctx, opts)
}

// isTetherImage reports whether image is one of tether's offline-built node
// images, which need a kind configuration of their own.
func isTetherImage(image string) bool {
	return strings.HasPrefix(image, nodeimage.Repository+":") || strings.HasPrefix(image, nodeimage.Repository+"@")
}

// NodeImage returns the node image this provider's clusters boot,
// pulling or building it first when Docker lacks it. It is chosen once per
// provider, however many clusters are created in parallel:
//
//  1. the user's image (--node-image, kind.nodeImage), as is; pulled only
//     when Docker lacks it, since kind pulls only what `docker image
//     inspect` does not find, so a local tag without a digest works offline;
//  2. else tether's offline-built image, when Docker has it;
//  3. else kind's default image, when Docker has it;
//  4. else kind's default image pulled, within defaultPullTimeout;
//  5. else tether's image, built offline.
//
// `tether prepare --provider kind` calls it to do the pull or build ahead.
func (p *Provider) NodeImage(ctx context.Context) (string, error) {
	p.imageMu.Lock()
	defer p.imageMu.Unlock()
	if p.imageDone {
		return p.image, p.imageErr
	}
	image, err := p.resolveImage(ctx)
	if err != nil && ctx.Err() != nil {
		// Cancelled, not failed: a later call with a live context may
		// still succeed.
		return "", err
	}
	p.imageDone, p.image, p.imageErr = true, image, err
	return image, err
}

func (p *Provider) resolveImage(ctx context.Context) (string, error) {
	if want := p.env.NodeImage; want != "" {
		if p.imagePresent(ctx, want) {
			return want, nil
		}
		step := p.prog.Start("pull node image " + want)
		err := p.pull(ctx, want, userPullTimeout)
		step.Done(err)
		if err != nil {
			return "", &NodeImageError{fmt.Errorf("node image %s is not in Docker and cannot be pulled (%w): pull or load it (docker pull, docker load -i), or name another in kind.nodeImage (tether.yaml)", want, err)}
		}
		return want, nil
	}
	if p.images.Present(ctx) {
		return p.images.Ref(), nil
	}
	if p.imagePresent(ctx, NodeImage) {
		return NodeImage, nil
	}
	step := p.prog.Start(fmt.Sprintf("pull kind's node image %s (up to %s)", shortImage(NodeImage), seconds(defaultPullTimeout)))
	pullErr := p.pull(ctx, NodeImage, defaultPullTimeout)
	step.Done(pullErr)
	if pullErr == nil {
		return NodeImage, nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if buildErr := p.images.CanBuild(); buildErr != nil {
		return "", &NodeImageError{fmt.Errorf("no kind node image: %s cannot be pulled (%w), and this machine cannot build one offline (%w); name an image Docker has or can pull in kind.nodeImage (tether.yaml)", shortImage(NodeImage), pullErr, buildErr)}
	}
	msg := fmt.Sprintf("%s cannot be pulled (%v); building a node image offline", strings.SplitN(shortImage(NodeImage), ":", 2)[0], pullErr)
	p.log.Warn(msg, "image", p.images.Ref())
	step = p.prog.Start(msg)
	ref, err := p.images.Ensure(ctx, nodeimage.Options{CacheDir: p.env.CacheDir, Log: p.log, Progress: p.prog})
	step.Done(err)
	if err != nil {
		return "", fmt.Errorf("build node image %s offline (because %s cannot be pulled: %v): %w", p.images.Ref(), shortImage(NodeImage), pullErr, err)
	}
	return ref, nil
}

// imagePresent reports whether Docker has image, by name or digest.
func (p *Provider) imagePresent(ctx context.Context, image string) bool {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	_, _, err := p.run(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", image)
	return err == nil
}

// pull runs docker pull within timeout and says why it failed.
func (p *Provider) pull(ctx context.Context, image string, timeout time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, stderr, err := p.run(tctx, "docker", "pull", image)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case tctx.Err() != nil:
		return fmt.Errorf("docker pull %s: no answer within %s", image, seconds(timeout))
	}
	if why := firstLine(stderr); why != "" {
		return errors.New(why)
	}
	return fmt.Errorf("docker pull %s: %w", image, err)
}

// shortImage drops the digest, which only makes messages longer.
func shortImage(image string) string {
	if i := strings.Index(image, "@"); i > 0 {
		return image[:i]
	}
	return image
}

// seconds prints a timeout as people write it: "60 s", not "1m0s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.0f s", d.Seconds()) }
