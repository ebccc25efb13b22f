// Package netpipetest starts the loopback servers that tests of tether's
// proxies stand at either end of a path: the stand-in process behind an
// embedded Service, the upstream an intercept's agent dials, a kubelet's
// pod port, an API server that never answers.
//
// Every server listens on 127.0.0.1:0, so tests run in parallel and reach
// nothing outside the machine, and is closed by t.Cleanup, connections
// still open included, so no test leaves a goroutine blocked in Accept or
// Read behind it. The handlers are the few behaviours those tests need
// (greet then echo, answer once after EOF, say nothing, hang up), named so
// that a test says which one its assertions rely on.
package netpipetest
