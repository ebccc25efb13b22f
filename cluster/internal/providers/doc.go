// Package providers defines what a cluster backend must do. Each backend
// (embedded, kind, existing) lives in its own folder below; the public
// cluster package picks one and drives it, as kind's pkg/cluster does with
// its node providers.
package providers
