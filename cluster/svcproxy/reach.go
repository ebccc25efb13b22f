package svcproxy

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ReachURL is how a user reaches addr, where port of svc is served on this
// machine: a URL when the port's name says it speaks HTTP (http, http-*,
// or appProtocol http), else the bare address. The CLI and the UI word it
// alike through it.
func ReachURL(svc *corev1.Service, port int32, addr string) string {
	for _, p := range svc.Spec.Ports {
		if p.Port != port {
			continue
		}
		if p.Name == "http" || strings.HasPrefix(p.Name, "http-") || (p.AppProtocol != nil && *p.AppProtocol == "http") {
			return "http://" + addr + "/"
		}
	}
	return addr
}
