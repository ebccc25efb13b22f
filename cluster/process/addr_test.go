package process

import (
	"net"
	"strings"
	"testing"
)

func TestFreeLoopbackAddrsAreDistinctAndFree(t *testing.T) {
	addrs, err := FreeLoopbackAddrs(5)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 5 {
		t.Fatalf("asked for 5 addresses, got %v", addrs)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("%s is not a loopback address", a)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice: %v", a, addrs)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is not free: %v", a, err)
			continue
		}
		l.Close()
	}
}
