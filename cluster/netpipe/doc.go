// Package netpipe joins two connections into one path, the piece every
// proxy of the workbench shares: the embedded service proxy, the intercept
// tunnel and traffic-agent, and the port-forward to a Service.
package netpipe
