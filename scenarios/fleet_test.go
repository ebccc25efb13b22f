package scenarios

import (
	"net"

	. "github.com/onsi/gomega"
)

// The fleet scenarios (rollout, drift of a spoke's Application, agent
// SIGKILL, principal restart, a partition, a sync requested while
// disconnected, agent isolation and a foreign CA) are named scenarios now:
// scenarios/catalog defines them once and catalog_test.go runs them, on
// the workbench `tether up` makes, as `tether scenario run` does.

// freeAddr is a loopback address nothing listens on right now.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}
