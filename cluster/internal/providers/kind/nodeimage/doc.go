// Package nodeimage makes a kind node image on the machine, offline.
//
// kind boots every node from a node image (kindest/node), which it pulls from
// a registry. On an air-gapped machine, or a CI sandbox that reaches only the
// Go module proxy and Debian's packages, that pull fails and kind cannot make
// a cluster at all. This package builds an equivalent image from what such a
// machine can reach: a Debian bookworm root filesystem from debootstrap
// (systemd, containerd, runc, iptables), the Kubernetes binaries compiled from
// the same pinned module as the embedded provider's control plane (so every
// provider runs one Kubernetes version), CoreDNS and the CNI plugins from
// their Go modules, and a static pause. The control-plane images kubeadm asks
// for are made with go-containerregistry from those binaries and preloaded
// into the node's containerd while the image is built, as kind's own node
// images are, so a node never pulls anything.
//
// The image is tagged tether.local/kind-node:<kubernetes version>-<key>, the
// key being a hash of every input; it is built once per machine and reused
// while Docker keeps it. A tag without a digest is what kind needs offline:
// kind only pulls an image that `docker inspect` does not find.
//
// Two settings make the image work on hosts like CI's: a capability wrapper
// around runc (capwrap) as containerd's runtime binary, and, where the
// container lacks CAP_SYS_RESOURCE, containerd's restrict_oom_score_adj. On
// a host with every capability neither changes anything, so one image serves
// laptops and CI. Cgroup v1 hosts also need the kubelet's failCgroupV1:
// false, which the kind provider patches into kubeadm's configuration.
package nodeimage
