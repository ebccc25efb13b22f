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

// A restarted set of processes gets its old addresses back when they are
// free; one another program holds is replaced, and nothing is handed out
// twice.
func TestLoopbackAddrsKeepFreeAddresses(t *testing.T) {
	old, err := FreeLoopbackAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", old[1])
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	got, err := LoopbackAddrs([]string{old[0], old[1], "", old[2], "not-an-address", "0.0.0.0:80", old[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("got %v, want 7 addresses", got)
	}
	if got[0] != old[0] || got[3] != old[2] {
		t.Errorf("free addresses not kept: asked for %s and %s, got %v", old[0], old[2], got)
	}
	if got[1] == old[1] {
		t.Errorf("%s is taken, yet handed out again", old[1])
	}
	seen := map[string]bool{}
	for _, a := range got {
		if !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
			t.Errorf("%s is not a loopback address with a port", a)
		}
		if seen[a] {
			t.Errorf("%s handed out twice: %v", a, got)
		}
		seen[a] = true
	}
}
