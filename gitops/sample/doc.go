// Package sample is the application the workbench seeds into its Git server
// so that a fresh fleet has something to sync.
//
// The application is deliberately small and namespace-agnostic (the
// Application's destination picks the namespace): a Deployment "web" running
// two replicas of a Workload, a Service "web" whose port 80 maps to the
// container port named http, and a ConfigMap "web-config". The workload is
// tether's own image running `tether sample serve` (Serve: GET / says which
// cluster, pod and node answered, /healthz is its readiness probe), so a
// kind cluster without access to a registry runs it from the image the
// workbench loaded into its nodes; the embedded provider names the same
// workload with a placeholder image (kwok runs no containers), and the
// existing provider, which has no image store, runs NginxWorkload. It exists
// in two shapes so scenarios can exercise both renderers of the sync engine:
//
//   - plain/: raw manifests, one single-document file (the Deployment) and
//     one multi-document file (ConfigMap and Service);
//   - kustomize/: a base plus one overlay per spoke, which labels every
//     object with tether.dev/spoke=<spoke>, runs one replica and stamps the
//     spoke's name into the ConfigMap (VARIANT, and TETHER_CLUSTER, which
//     the server reports), so each spoke gets a visibly different variant
//     of the same application.
//
// Ensure is what the workbench runs on every up: it seeds a repository that
// has no sample yet and otherwise keeps its commits, changing only the set
// of overlays (one per spoke) and the tag of tether's image. Seed writes the
// whole sample back (a reset), and Commit with the Edit helpers (Scale,
// WriteFile, RemoveFile) lets scenarios "make a change" the way a developer
// would: clone, edit, commit, push.
package sample
