// Package render turns an application's folder in a Git checkout into the
// Kubernetes objects the sync engine diffs and applies.
//
// It is the "render" step of Argo-CD-style sync (render, diff, apply). Two
// sources are supported, chosen per folder:
//
//   - a Kustomize folder (one holding kustomization.yaml, kustomization.yml or
//     Kustomization) is built in-process with sigs.k8s.io/kustomize/api/krusty,
//     so agents need no kustomize binary and no fork/exec per sync;
//   - any other folder is read as plain manifests (*.yaml, *.yml, *.json),
//     recursively and in a stable order, so two renders of the same commit
//     produce byte-identical input for the diff.
//
// Rendering never reads outside the checkout: the application path may not
// climb out of the root, symlinks may not point out of it, and Kustomize's
// file system is fenced to the checkout as well, because the checkout's content
// is controlled by whoever can push to the repository while the agent runs with
// the agent's privileges.
//
// Failures are reported as *RenderError values (file, line, message) joined
// with errors.Join, so a controller can show every broken file in an
// Application's status condition at once instead of one per sync attempt.
package render
