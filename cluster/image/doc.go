// Package image builds the container image of tether's own binary.
//
// On kind the principal, the agents and the Git server run as pods, and their
// image has to come from somewhere. Pulling one from a registry would make a
// workbench depend on the network and on whoever publishes it; building one
// with a Dockerfile would need a Docker daemon (which the embedded provider
// exists to do without) and a base image, which is another pull. This package
// does what ko does instead: it wraps a static Go binary (CGO_ENABLED=0, so it
// needs no libc) with go-containerregistry in a single layer on top of an
// empty image, together with the build machine's CA bundle and a writable
// /tmp. Nothing is pulled and no daemon is asked; the result is written as a
// docker-archive tarball, which is what kind's nodeutils.LoadImageArchive
// feeds to `ctr images import` on each node.
//
// The binary is either the running tether itself, when Runnable says it fits
// the nodes' Platform as it is (a static Linux ELF for their architecture,
// such as one installed with CGO_ENABLED=0 go install), or one BuildBinary
// cross-compiles from a checkout for that platform (GOOS=linux, the engine's
// GOARCH): an arm64 Docker engine gets an arm64 image whatever the build
// machine is.
//
// The CA bundle is found as crypto/x509 finds one on the build machine
// (CACertBundle: $SSL_CERT_FILE, then the Linux or BSD list of known files).
// On macOS and Windows the system roots are not in a file, so the image gets
// no bundle, which is logged at Debug. That only matters for TLS to
// endpoints outside the workbench: traffic between the components is
// verified against the workbench CA, which comes from their Secrets.
//
// Builds are reproducible: every timestamp in the layer and the config is
// fixed (Options.Created, the Unix epoch unless set, like SOURCE_DATE_EPOCH)
// and the tar is written in a fixed order, so the same binary always gives
// the same digest. That makes the digest usable as the image tag (Ref): a
// rebuilt binary gets a new tag, so its Deployments roll, while an unchanged
// one keeps its tag and nothing restarts. With IfNotPresent and a reused tag
// such as "latest", nodes would keep running whatever they loaded first.
package image
