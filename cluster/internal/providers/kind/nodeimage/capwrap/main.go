// Command capwrap is an OCI runtime that is runc with fewer capabilities.
//
// Some machines (CI sandboxes, some VMs) run the container engine with a
// capability bounding set that lacks a capability runc is told to grant, most
// often CAP_SYS_RESOURCE. A privileged container asks for every capability,
// so runc fails with "unable to apply caps: operation not permitted" and a
// kind node never starts. capwrap removes from the container's spec the
// capabilities this process cannot hold, then execs the real runc with the
// same arguments. Where the bounding set is full it changes nothing, so the
// same program serves Docker on the host (a "runtimes" entry in daemon.json)
// and containerd inside tether's kind node image (the runc BinaryName).
//
// It uses only the standard library, because the node-image builder compiles
// it from this source in a scratch module.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	real, err := findRunc()
	if err != nil {
		fmt.Fprintln(os.Stderr, "capwrap:", err)
		os.Exit(127)
	}
	bounding, err := boundingSet("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "capwrap:", err)
		os.Exit(1)
	}
	if err := rewrite(os.Args[1:], bounding); err != nil {
		fmt.Fprintln(os.Stderr, "capwrap:", err)
		os.Exit(1)
	}
	argv := append([]string{real}, os.Args[1:]...)
	if err := syscall.Exec(real, argv, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "capwrap: exec %s: %v\n", real, err)
		os.Exit(1)
	}
}
