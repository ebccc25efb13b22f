// Package providers defines what a cluster backend must do. Each backend
// (embedded, kind, existing) lives in its own folder below; the public
// cluster package picks one and drives it, as kind's pkg/cluster does with
// its node providers.
//
// Besides the Provider interface every backend implements, a backend says
// what it is (Traits) and may implement optional interfaces for what only
// some can do (Sweeper, ImageLoader, ProcessLister); the workbench asks
// for those instead of switching on a backend's name.
package providers
