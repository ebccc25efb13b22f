// Package sample is the application the workbench seeds into its Git server
// so that a fresh fleet has something to sync.
//
// The application is deliberately small and namespace-agnostic (the
// Application's destination picks the namespace): a Deployment "web" running
// two nginx replicas, a Service "web" on port 80 and a ConfigMap
// "web-config". It exists in two shapes so scenarios can exercise both
// renderers of the sync engine:
//
//   - plain/: raw manifests, one single-document file (the Deployment) and
//     one multi-document file (ConfigMap and Service);
//   - kustomize/: a base plus one overlay per spoke, which labels every
//     object with tether.dev/spoke=<spoke>, runs one replica and stamps the
//     spoke's name into the ConfigMap, so each spoke gets a visibly
//     different variant of the same application.
//
// Seed writes the files into a repository over HTTP (idempotently), and
// Commit with the Edit helpers (Scale, WriteFile, RemoveFile) lets scenarios
// "make a change" the way a developer would: clone, edit, commit, push.
package sample
