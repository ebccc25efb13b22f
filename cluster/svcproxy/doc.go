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
// that forwards each connection to an endpoint the Router picks; a Service
// port can be pinned to a fixed address (Options.Pinned) so that processes
// can be given it before the Proxy starts.
//
// Unlike kube-proxy, which leaves established TCP flows alone, the Proxy
// closes the connections it proxies to an endpoint as soon as that endpoint
// leaves its Service's endpoints (pod deleted, selector changed). The
// clients that matter here hold one connection for hours (an agent's gRPC
// stream to the principal); without the close, an intercept of the
// principal's Service would only ever see new clients, and stopping it
// would strand the streams on a traffic-agent that is going away. Closing
// makes them reconnect through the Service and follow its current routing.
// Connections to endpoints that remain are never touched.
//
// A Proxy keeps a record of its routes (Options.MappingFile; for a
// workbench's proxies, RoutesFile). LookupRoute and Reach read it, so that
// whoever shows where this machine reaches a Service (intercepts, the
// sample's URL) asks this package and not the fleet that started the proxy.
package svcproxy
