// Package health judges whether a live Kubernetes object is doing what its
// manifest asked for, the way Argo CD's health assessment does.
//
// The sync engine uses it to decide when a sync wave may proceed and what an
// Application's health is; agents report it to the hub so the fleet view can
// show which spoke is degraded without reading every object itself. It only
// looks at the object it is given (no lookups of owned Pods or events), so it
// is cheap enough to run on every informer event.
package health
