package netpipetest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Listen is a TCP listener on a free loopback port, closed when the test
// ends: for code under test that serves on a listener it is given.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// FreeAddr is a loopback address nothing listens on (it did a moment
// ago): for a dial that must be refused, or a port code under test is to
// bind itself.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Serve accepts on a new loopback listener until the test ends and runs
// handle for each connection in a goroutine of its own, closing the
// connection when handle returns. When the test ends the listener and the
// connections still open are closed, which ends handlers blocked on them.
// It returns the listener's address.
func Serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	return ServeListener(t, Listen(t), handle)
}

// ServeListener is Serve on l (a TLS listener, say), which it closes when
// the test ends.
func ServeListener(t testing.TB, l net.Listener, handle func(net.Conn)) string {
	t.Helper()
	var (
		mu     sync.Mutex
		open   = map[net.Conn]bool{}
		closed bool
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for c := range open {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			open[c] = true
			mu.Unlock()
			go func() {
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	return l.Addr().String()
}

// ServeStreams runs handle for each connection accept returns (a yamux
// session's Accept, say) in a goroutine of its own, closing the
// connection when handle returns, until accept fails (the session
// closed). It returns at once.
func ServeStreams(accept func() (net.Conn, error), handle func(net.Conn)) {
	go func() {
		for {
			c, err := accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// Echo serves GreetAndEcho(banner) and returns its address: a stand-in
// process that says who it is, so a test sees where a connection landed.
func Echo(t testing.TB, banner string) string {
	t.Helper()
	return Serve(t, func(c net.Conn) { GreetAndEcho(c, banner) })
}

// ServeHTTP serves h on a new loopback listener until the test ends and
// returns its address (host:port).
func ServeHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	l := Listen(t)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// GreetAndEcho writes banner and a newline (nothing when banner is empty),
// then echoes what it reads until EOF. It takes any connection, a yamux
// stream as well.
func GreetAndEcho(c io.ReadWriter, banner string) {
	if banner != "" {
		if _, err := fmt.Fprintln(c, banner); err != nil {
			return
		}
	}
	_, _ = io.Copy(c, c)
}

// ShoutAfterEOF reads until EOF (a half-close), then answers what it read
// in upper case: a reply that proves the half-close went through.
func ShoutAfterEOF(c io.ReadWriter) {
	b, _ := io.ReadAll(c)
	_, _ = c.Write([]byte(strings.ToUpper(string(b))))
}

// Reply writes msg and hangs up, without reading.
func Reply(msg string) func(net.Conn) {
	return func(c net.Conn) { _, _ = io.WriteString(c, msg) }
}

// HangUp closes each connection at once: a server that accepts and finds
// nothing to connect it to.
func HangUp(net.Conn) {}

// Silent never answers: it reads and drops until the peer or the test's
// end closes the connection.
func Silent(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
