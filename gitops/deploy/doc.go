// Package deploy is the Kubernetes side of tether's GitOps components: the
// principal and the Git server on the hub, an agent on each spoke.
//
// On kind these objects are what runs the components, as pods of the image
// cluster/image builds from tether's own binary and loads into the nodes
// (hence the IfNotPresent pull policy: there is no registry to pull from).
// On the embedded provider kwok plays the nodes and runs nothing, so the
// components run as child processes of the workbench instead; applying the
// same objects there still matters, because a real kube-apiserver validates
// them, and a manifest bug found on a laptop without Docker is one that
// never reaches a kind cluster.
//
// The objects are built as typed k8s.io/api structs, so the compiler checks
// field names, and handed out as unstructured objects, which is what
// server-side apply through a dynamic client takes. Apply and Delete work on
// any set of objects, in the order that lets each one succeed.
package deploy
