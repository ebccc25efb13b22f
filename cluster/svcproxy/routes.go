package svcproxy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ErrNotServed says a Service port is not in a proxy's routes record: the
// Service or the port does not exist, or the proxy serves other
// namespaces only.
var ErrNotServed = errors.New("not served by the service proxy")

// RoutesFile is where the service proxy of an embedded cluster of the
// workbench in stateDir keeps its routes record (Options.MappingFile):
// under the GitOps system's folder, since `tether up` starts the proxies
// with the system. It is named here, beside the proxy, so that those who
// read the record (intercepts, `tether sample url`) need not import the
// fleet that writes it.
func RoutesFile(stateDir, clusterName string) string {
	return filepath.Join(stateDir, "fleet", "routes-"+clusterName+".json")
}

// LookupRoute is the loopback address the routes record at path gives a
// Service port. A missing record is an error wrapping fs.ErrNotExist (no
// proxy runs for that cluster); a port not in it, ErrNotServed.
func LookupRoute(path, ns, svc string, port int32) (string, error) {
	routes, err := ReadMapping(path)
	if err != nil {
		return "", fmt.Errorf("read the service proxy's routes %s: %w", path, err)
	}
	for _, r := range routes {
		if r.Namespace == ns && r.Service == svc && r.Port == port {
			return r.Address, nil
		}
	}
	return "", fmt.Errorf("%s/%s port %d: %w", ns, svc, port, ErrNotServed)
}

// Reach is how this machine reaches a Service port of the embedded cluster
// whose routes record is at path, worded for a user (ReachURL): the
// address the proxy serves it on, as a URL when the live Service (read
// through cs) names the port as HTTP.
func Reach(ctx context.Context, cs kubernetes.Interface, path, ns, svc string, port int32) (string, error) {
	addr, err := LookupRoute(path, ns, svc, port)
	if err != nil {
		return "", err
	}
	return ReachAddr(ctx, cs, ns, svc, port, addr), nil
}

// ReachAddr words addr, where this machine reaches port of the Service
// ns/svc, with ReachURL; the bare address when the Service cannot be read.
func ReachAddr(ctx context.Context, cs kubernetes.Interface, ns, svc string, port int32, addr string) string {
	s, err := cs.CoreV1().Services(ns).Get(ctx, svc, metav1.GetOptions{})
	if err != nil {
		return addr
	}
	return ReachURL(s, port, addr)
}
