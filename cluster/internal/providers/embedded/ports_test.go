package embedded

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// Clusters of one up allocate in parallel; no port may be handed out twice
// even though each is free again until its process binds it.
func TestAllocatePortsNeverHandsAPortOutTwice(t *testing.T) {
	p := &Provider{}
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt, err := p.allocatePorts(0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, port := range pt.list() {
				if other, dup := seen[port]; dup {
					t.Errorf("port %d handed to clusters %d and %d", port, other, i)
				}
				seen[port] = i
			}
		}()
	}
	wg.Wait()
	if len(seen) != 20*5 {
		t.Fatalf("%d distinct ports for 20 clusters, want 100", len(seen))
	}
}

func TestReserveRefusesPortsHandedToAnotherCluster(t *testing.T) {
	p := &Provider{}
	pt, err := p.allocatePorts(0)
	if err != nil {
		t.Fatal(err)
	}
	if p.reserve(pt.list()) {
		t.Fatal("a restarting cluster reused ports just handed to another cluster")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if p.reserve([]int{l.Addr().(*net.TCPAddr).Port}) {
		t.Fatal("reserved a port something listens on")
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	if !p.reserve([]int{port}) {
		t.Fatalf("could not reserve free port %d", port)
	}
}

func TestAllocatePortsRefusesOnePinnedPortForTwoClusters(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	p := &Provider{}
	if _, err := p.allocatePorts(port); err != nil {
		t.Fatal(err)
	}
	if _, err := p.allocatePorts(port); err == nil || !strings.Contains(err.Error(), "pinned for two clusters") {
		t.Fatalf("second cluster on pinned port %d: err %v", port, err)
	}
}
