package process

import (
	"fmt"
	"net"
)

// FreeLoopbackAddrs returns n distinct 127.0.0.1 addresses nothing listens
// on, for processes about to be started on them. All are held open until
// every one is picked, so the kernel cannot hand one out twice; another
// program can still take one before the process binds it, which the
// caller's start-up check reports.
func FreeLoopbackAddrs(n int) ([]string, error) {
	return LoopbackAddrs(make([]string, n))
}

// LoopbackAddrs returns one 127.0.0.1 address per entry of want: the entry
// itself when it is a loopback address nothing listens on, else a free
// one. Processes restarted with it come back where their clients were told
// to find them (the agents dial the principal's Service at a pinned
// address); only an address another program took in the meantime moves.
// Empty entries always get a free address. As with FreeLoopbackAddrs, all
// are held open until every one is picked.
func LoopbackAddrs(want []string) ([]string, error) {
	out := make([]string, len(want))
	var hold []net.Listener
	defer func() {
		for _, l := range hold {
			l.Close()
		}
	}()
	// The wanted addresses are claimed first, so a free one picked for an
	// empty entry can never be one of them.
	for i, w := range want {
		if !isLoopback(w) {
			continue
		}
		if l, err := net.Listen("tcp", w); err == nil {
			hold = append(hold, l)
			out[i] = w
		}
	}
	for i := range out {
		if out[i] != "" {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free loopback port: %w", err)
		}
		hold = append(hold, l)
		out[i] = l.Addr().String()
	}
	return out, nil
}

// isLoopback reports whether addr is 127.0.0.1:<port> with a port other
// than 0 (which would mean "any").
func isLoopback(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	return err == nil && host == "127.0.0.1" && port != "" && port != "0"
}
