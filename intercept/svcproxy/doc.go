// Package svcproxy is the embedded provider's stand-in for kube-proxy.
//
// Embedded clusters run kwok nodes: pods go Running but run nothing, and
// their IPs are fake. Components that tether runs as local processes still
// get Pod objects, annotated with the loopback address the real process
// listens on (AnnotationLocalAddress). The Router follows Services through
// their EndpointSlices to those pods, so routing is decided by the API server
// exactly as on a real cluster: a selector change (an intercept's takeover)
// re-routes new connections as soon as the EndpointSlice controller has
// updated the slices. The Proxy gives every Service port a loopback listener
// that forwards each connection to an endpoint the Router picks.
package svcproxy
