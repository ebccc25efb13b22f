// Package kubeapply is tether's one way of writing an object to a cluster:
// client-go's server-side apply (a Patch of types.ApplyPatchType under a
// field manager), for typed and dynamic clients alike.
//
// The GitOps engine, the deployer of tether's own components and the
// intercept's traffic-agent launcher all apply objects they own, with the
// same options (a field manager, force, sometimes a server-side dry run).
// Apply takes any client-go resource client by its Patch method, which
// typed and dynamic clients share, so neither gitops nor intercept imports
// the other to share it, and none of them builds patch bodies or options
// by hand. It sits under cluster because it knows nothing of either: only
// the API server.
package kubeapply
