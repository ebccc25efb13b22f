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
	var out []string
	var hold []net.Listener
	defer func() {
		for _, l := range hold {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free loopback port: %w", err)
		}
		hold = append(hold, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}
