// Package image builds the container image of tether's own binary.
//
// On kind the principal, the agents and the Git server run as pods, and their
// image has to come from somewhere. Pulling one from a registry would make a
// workbench depend on the network and on whoever publishes it; building one
// with a Dockerfile would need a Docker daemon (which the embedded provider
// exists to do without) and a base image, which is another pull. This package
// does what ko does instead: it cross-compiles tether as a static Go binary
// (CGO_ENABLED=0, so it needs no libc) and wraps it with go-containerregistry
// in a single layer on top of an empty image, together with the build
// machine's CA bundle and a writable /tmp. Nothing is pulled and no daemon is
// asked; the result is written as a docker-archive tarball, which is what
// kind's nodeutils.LoadImageArchive feeds to `ctr images import` on each node.
//
// Builds are reproducible: every timestamp in the layer and the config is
// fixed (Options.Created, the Unix epoch unless set, like SOURCE_DATE_EPOCH)
// and the tar is written in a fixed order, so the same binary always gives
// the same digest. That makes the digest usable as the image tag (Ref): a
// rebuilt binary gets a new tag, so its Deployments roll, while an unchanged
// one keeps its tag and nothing restarts. With IfNotPresent and a reused tag
// such as "latest", nodes would keep running whatever they loaded first.
package image
