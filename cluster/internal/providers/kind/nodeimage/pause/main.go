// Command pause is the sandbox process of every pod on a tether kind node:
// it holds the pod's namespaces open, reaps orphaned children (it is PID 1
// of the pod when the process namespace is shared) and exits on SIGINT or
// SIGTERM. Kubernetes' own pause image is a C program; this one is built
// from Go's standard library by the node-image builder, offline.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
